"""Tenants, their users, namespaces, image repositories, grants, API tokens, and what the registry holds:
blobs, manifests, tags and uploads (spec section 9)."""

import hashlib
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models.functions import Length
from django.utils import timezone

from swr import names
from swr.choices import Category, PermissionLevel, SharePermit, TemporaryLoginKind
from swr.distribution import digests

# Longest description of an image repository (SWR's limit).
DESCRIPTION_MAX_LENGTH = 1000


def _hex_id() -> str:
    return uuid.uuid4().hex


class NameField(models.CharField):
    """A CharField judged by its naming rule alone, so every surface shows the rule's messages."""

    rule: names.NameRule

    def __init__(self, *args, **kwargs):
        # The width is passed, not read from the rule here: the model passes the rule's length, and each
        # migration the width it recorded (CharField's deconstruct keeps it), so that a change of the rule's
        # length is a migration of the column (tests/test_models.py holds the two together).
        if kwargs.get("max_length") is None:
            raise TypeError(f"{type(self).__name__} needs max_length (the rule's: {self.rule.max_length})")
        super().__init__(*args, **kwargs)
        # CharField adds Django's generic max-length validator; the rule checks
        # the length with a message of its own.
        self.validators.clear()

    def validate(self, value, model_instance):
        # Before Django's own checks, so that an empty name gets the rule's message too.
        self.rule.validate(value)
        super().validate(value, model_instance)

    def formfield(self, **kwargs):
        return super().formfield(**{"max_length": None, "strip": False, **kwargs})


def name_rule_check(rule: names.NameRule, field: str = "name") -> models.CheckConstraint:
    """The database's copy of a naming rule: its pattern, its length limit and its reserved names."""
    condition = models.Q(**{f"{field}__regex": rule.pattern}) & models.lookups.LessThanOrEqual(
        Length(field), rule.max_length
    )
    if rule.reserved:
        condition &= ~models.Q(**{f"{field}__in": sorted(rule.reserved)})
    return models.CheckConstraint(
        condition=condition,
        name=f"%(app_label)s_%(class)s_{field}_valid",
        violation_error_message=f"The {rule.kind} breaks the naming rule.",
    )


class NamespaceNameField(NameField):
    rule = names.NAMESPACE


class RepositoryNameField(NameField):
    rule = names.REPOSITORY


class Tenant(models.Model):
    """An account (SWR's "domain") that owns namespaces and has users."""

    name = models.CharField(max_length=64, help_text="Domain name of the tenant.")
    domain_id = models.CharField(max_length=32, default=_hex_id, editable=False)
    project_id = models.CharField(max_length=32, default=_hex_id, editable=False)
    namespace_quota = models.PositiveIntegerField(
        "organization quota",
        null=True,
        blank=True,
        help_text="Most organizations the tenant may own. Empty: the server's default.",
    )
    repository_quota = models.PositiveIntegerField(
        "repository quota",
        null=True,
        blank=True,
        help_text="Most image repositories the tenant may own. Empty: the server's default.",
    )
    # What the tenant owns, kept by the services in the same transaction as each create and delete, so that a
    # quota is checked and taken by one conditional UPDATE of this row (see swr.services).
    namespace_count = models.PositiveIntegerField("organizations owned", default=0, editable=False)
    repository_count = models.PositiveIntegerField("repositories owned", default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                name="%(app_label)s_%(class)s_unique_name",
                violation_error_message="A tenant with this name already exists.",
            ),
            models.UniqueConstraint(fields=["domain_id"], name="%(app_label)s_%(class)s_unique_domain_id"),
            models.UniqueConstraint(fields=["project_id"], name="%(app_label)s_%(class)s_unique_project_id"),
        ]

    def __str__(self) -> str:
        return self.name

    def quota(self, key: str) -> int:
        """The tenant's limit for ``key`` ("namespace" or "repository"): its own, else the server's default."""
        own = getattr(self, f"{key}_quota")
        return own if own is not None else settings.SWR_DEFAULT_QUOTAS[key]


class User(AbstractUser):
    """A person or a program that calls the API, member of one tenant.

    Platform staff who only use the admin site may have no tenant.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    is_tenant_admin = models.BooleanField(
        default=False, help_text="Has manage permission on every organization of the tenant."
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_tenant_admin=False) | models.Q(tenant__isnull=False),
                name="%(app_label)s_%(class)s_tenant_admin_has_tenant",
                violation_error_message="A tenant administrator must belong to a tenant.",
            ),
        ]

    def clean(self):
        """A user who holds grants stays in the tenant they name: grants name users of the same tenant."""
        super().clean()
        if self.pk is None:
            return
        # exclude(tenant_id=None) keeps every grant: a user without a tenant may hold none.
        if (
            self.namespace_permissions.exclude(namespace__tenant_id=self.tenant_id).exists()
            or self.repository_permissions.exclude(repository__namespace__tenant_id=self.tenant_id).exists()
        ):
            raise ValidationError(
                {"tenant": "This user holds permissions in another tenant; remove them before moving the user."}
            )


class Namespace(models.Model):
    """An organization: a globally unique top-level name that holds image repositories.

    The model keeps SWR's internal name (namespace); everything a person reads says organization.
    """

    name = NamespaceNameField(
        max_length=names.NAMESPACE.max_length, help_text="Organization name, unique across all tenants."
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="namespaces")
    creator = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="A user of the same tenant; gets the manage permission on the organization.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "organization"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                name="%(app_label)s_%(class)s_unique_name",
                violation_error_message="An organization with this name already exists.",
            ),
            name_rule_check(names.NAMESPACE),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        """The creator is a user of the organization's tenant (grants name users of the same tenant)."""
        if self.creator_id and self.tenant_id and self.creator.tenant_id != self.tenant_id:
            raise ValidationError({"creator": "The creator must be a user of the organization's tenant."})


def _related_or_none(obj: models.Model, field: str) -> models.Model | None:
    """The object a foreign key points to (saved or not yet), or None when it is not set."""
    try:
        return getattr(obj, field)
    except ObjectDoesNotExist:
        return None


class Repository(models.Model):
    """An image repository inside an organization (namespace)."""

    # No index of its own: the unique (namespace, name) constraint's index leads with it.
    namespace = models.ForeignKey(
        Namespace,
        verbose_name="organization",
        on_delete=models.PROTECT,
        related_name="repositories",
        db_index=False,
    )
    name = RepositoryNameField(
        max_length=names.REPOSITORY.max_length,
        help_text="Repository name, unique within its organization; may contain '/'.",
    )
    category = models.CharField(
        max_length=16,
        choices=Category.choices,
        default=Category.OTHER,
        error_messages={
            "invalid_choice": "Invalid category %(value)r: use one of " + ", ".join(Category.values) + ".",
        },
    )
    description = models.CharField(max_length=DESCRIPTION_MAX_LENGTH, blank=True, default="")
    is_public = models.BooleanField(help_text="Public repositories can be read by every tenant.")
    creator = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="A user of the organization's tenant.",
    )
    # Kept up to date by the distribution side (push, pull) once it exists; 0 until then.
    num_images = models.PositiveIntegerField(default=0, editable=False, help_text="Number of tags.")
    num_download = models.PositiveBigIntegerField(default=0, editable=False, help_text="Number of pulls.")
    size = models.PositiveBigIntegerField(default=0, editable=False, help_text="Storage used, in bytes.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace__name", "name"]
        verbose_name_plural = "repositories"
        # One index per ordering column of the listing, with the id as tie-break,
        # so that a page is read in index order. They also carry what decides
        # who may read a repository (namespace, is_public): the listing finds the
        # ids of a page from the index alone (an index-only scan on PostgreSQL),
        # however many rows of others it has to pass. Filters on name and
        # namespace use trigram indexes on PostgreSQL (migration 0003).
        indexes = [
            models.Index(fields=["name", "id"], include=["namespace", "is_public"], name="swr_repo_name_id"),
            models.Index(fields=["updated_at", "id"], include=["namespace", "is_public"], name="swr_repo_updated_id"),
            models.Index(
                fields=["num_images", "id"], include=["namespace", "is_public"], name="swr_repo_num_images_id"
            ),
            models.Index(fields=["is_public", "id"], include=["namespace"], name="swr_repo_is_public_id"),
            models.Index(fields=["category", "id"], name="swr_repo_category_id"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["namespace", "name"],
                name="%(app_label)s_%(class)s_unique_namespace_name",
                violation_error_message="An image repository with this name already exists in this organization.",
            ),
            name_rule_check(names.REPOSITORY),
            models.CheckConstraint(
                condition=models.Q(category__in=Category.values),
                name="%(app_label)s_%(class)s_category_valid",
                violation_error_message="Unknown repository category.",
            ),
            models.CheckConstraint(
                condition=models.lookups.LessThanOrEqual(Length("description"), DESCRIPTION_MAX_LENGTH),
                name="%(app_label)s_%(class)s_description_length",
                violation_error_message=f"The description is longer than {DESCRIPTION_MAX_LENGTH} characters.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.namespace.name}/{self.name}" if self.namespace_id else self.name

    def clean(self):
        """The creator is a user of the organization's tenant (grants name users of the same tenant)."""
        namespace = _related_or_none(self, "namespace")
        if self.creator_id and namespace is not None and self.creator.tenant_id != namespace.tenant_id:
            raise ValidationError({"creator": "The creator must be a user of the organization's tenant."})


class Grant(models.Model):
    """A user's permission level on one object; the subclasses name the object."""

    level = models.PositiveSmallIntegerField(choices=PermissionLevel.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=models.Q(level__in=PermissionLevel.values),
                name="%(app_label)s_%(class)s_level_valid",
                violation_error_message=f"The permission level must be {PermissionLevel.listing()}.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.target}: {self.get_level_display()}"

    @property
    def target(self) -> models.Model:
        raise NotImplementedError

    def target_tenant_id(self) -> int | None:
        """The tenant of the object the grant is on; None while that object is not chosen yet."""
        raise NotImplementedError

    def clean(self):
        """Grants name users of the tenant that owns the object (README, spec section 6)."""
        tenant_id = self.target_tenant_id()
        if self.user_id and tenant_id is not None and self.user.tenant_id != tenant_id:
            raise ValidationError({"user": "Permissions can only name users of the same tenant."})


class NamespacePermission(Grant):
    """A user's permission level on one organization (namespace)."""

    # No index of its own: the unique (namespace, user) constraint's index leads with it.
    namespace = models.ForeignKey(
        Namespace,
        verbose_name="organization",
        on_delete=models.CASCADE,
        related_name="permissions",
        db_index=False,
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="namespace_permissions")

    class Meta(Grant.Meta):
        verbose_name = "organization permission"
        constraints = [
            *Grant.Meta.constraints,
            models.UniqueConstraint(
                fields=["namespace", "user"],
                name="%(app_label)s_%(class)s_unique_namespace_user",
                violation_error_message="This user already has a permission on this organization.",
            ),
        ]

    @property
    def target(self):
        return self.namespace

    def target_tenant_id(self):
        # The admin's add page validates inline grants against the organization before it is saved.
        namespace = _related_or_none(self, "namespace")
        return namespace.tenant_id if namespace is not None else None


class RepositoryPermission(Grant):
    """A user's permission level on one repository; it adds to what the organization grant gives."""

    # No index of its own: the unique (repository, user) constraint's index leads with it.
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="permissions", db_index=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="repository_permissions")

    class Meta(Grant.Meta):
        constraints = [
            *Grant.Meta.constraints,
            models.UniqueConstraint(
                fields=["repository", "user"],
                name="%(app_label)s_%(class)s_unique_repository_user",
                violation_error_message="This user already has a permission on this repository.",
            ),
        ]

    @property
    def target(self):
        return self.repository

    def target_tenant_id(self):
        repository = _related_or_none(self, "repository")
        namespace = _related_or_none(repository, "namespace") if repository is not None else None
        return namespace.tenant_id if namespace is not None else None


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A bearer token for X-Auth-Token. Only the SHA-256 of the secret is stored."""

    PREFIX = "swr_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, editable=False)
    hint = models.CharField(
        max_length=16, editable=False, help_text="The first characters of the token, to tell tokens apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"
        constraints = [
            models.UniqueConstraint(fields=["key_hash"], name="%(app_label)s_%(class)s_unique_key_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"

    @staticmethod
    def hash_key(raw: str) -> str:
        """Tokens are long random secrets, so one SHA-256 is a safe and fast way to store them."""
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class TemporaryLoginQuerySet(models.QuerySet):
    def active(self):
        return self.filter(expires_at__gt=timezone.now())


class TemporaryLogin(models.Model):
    """A registry login for a limited time (spec section 11): ``<project>@<identifier>`` (a secret) or
    ``bearertoken@<identifier>`` (an authorization token), with a random secret of which only the SHA-256 is
    stored. Valid until ``expires_at``; revoked by deleting it."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="temporary_logins")
    identifier = models.CharField(max_length=32, editable=False, help_text="The part of the user name after '@'.")
    secret_hash = models.CharField(max_length=64, editable=False)
    kind = models.CharField(max_length=16, choices=TemporaryLoginKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    objects = TemporaryLoginQuerySet.as_manager()

    class Meta:
        verbose_name = "temporary login"
        constraints = [
            models.UniqueConstraint(fields=["identifier"], name="%(app_label)s_%(class)s_unique_identifier"),
            models.CheckConstraint(
                condition=models.Q(kind__in=TemporaryLoginKind.values),
                name="%(app_label)s_%(class)s_kind_valid",
                violation_error_message="Unknown kind of temporary login.",
            ),
            models.CheckConstraint(
                condition=models.Q(secret_hash__regex=r"^[0-9a-f]{64}$"),
                name="%(app_label)s_%(class)s_secret_hash_valid",
                violation_error_message="The secret is stored as its SHA-256, 64 lower-case hex digits.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.identifier} ({self.user})"

    @staticmethod
    def hash_secret(raw: str) -> str:
        """Secrets are long random strings: one SHA-256 stores them safely."""
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()


class RepositoryShare(models.Model):
    """A private repository shared with another tenant (SWR's "access domain", spec section 12): while the
    deadline has not passed (none: forever), every user of that tenant may read and pull it."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="shares", db_index=False)
    access_domain = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="shared_repositories", help_text="The tenant shared with."
    )
    permit = models.CharField(max_length=8, choices=SharePermit.choices, default=SharePermit.READ)
    deadline = models.DateTimeField(null=True, blank=True, help_text="When the share ends; empty: never.")
    description = models.CharField(max_length=DESCRIPTION_MAX_LENGTH, blank=True, default="")
    creator = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "repository share"
        ordering = ["repository", "access_domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "access_domain"],
                name="%(app_label)s_%(class)s_unique_repository_tenant",
                violation_error_message="This repository is already shared with this tenant.",
            ),
            models.CheckConstraint(
                condition=models.Q(permit__in=SharePermit.values),
                name="%(app_label)s_%(class)s_permit_valid",
                violation_error_message="The permit of a share must be read.",
            ),
            models.CheckConstraint(
                condition=models.lookups.LessThanOrEqual(Length("description"), DESCRIPTION_MAX_LENGTH),
                name="%(app_label)s_%(class)s_description_length",
                violation_error_message=f"The description is longer than {DESCRIPTION_MAX_LENGTH} characters.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.repository} shared with {self.access_domain}"

    @property
    def is_live(self) -> bool:
        """Whether the share gives anything now (spec section 12's ``status``)."""
        return self.deadline is None or self.deadline > timezone.now()

    def clean(self):
        """A repository is shared with another tenant, never with its own."""
        repository = _related_or_none(self, "repository")
        if repository is not None and self.access_domain_id and repository.namespace.tenant_id == self.access_domain_id:
            raise ValidationError({"access_domain": "A repository is shared with another tenant, not its own."})


class AccessKey(models.Model):
    """An AK/SK pair for SDK-HMAC-SHA256 request signatures.

    The secret key is needed in clear to check a signature, so it is stored
    encrypted (Fernet, key from SWR_CREDENTIALS_KEY) and shown once, when issued.
    """

    access_key = models.CharField(max_length=32, editable=False)
    secret_encrypted = models.TextField(editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_keys")
    is_active = models.BooleanField(default=True, help_text="Disabled keys are refused.")
    description = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "access key"
        constraints = [
            models.UniqueConstraint(fields=["access_key"], name="%(app_label)s_%(class)s_unique_access_key"),
        ]

    def __str__(self) -> str:
        return f"{self.access_key} ({self.user})"


class UsedSignature(models.Model):
    """An AK/SK signature of a state-changing request that was accepted: each is accepted once (spec section 1).

    The row lives until the signature's X-Sdk-Date leaves the accepted window (``expires_at``); the unique
    constraint decides which of two racing copies of one request is accepted, on every worker and node.
    """

    signature = models.CharField(max_length=64, help_text="Hex HMAC-SHA256 signature, lower case.")
    expires_at = models.DateTimeField(db_index=True, help_text="When X-Sdk-Date of the request stops being accepted.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["signature"],
                name="%(app_label)s_%(class)s_unique_signature",
                violation_error_message="This signature was used already.",
            )
        ]

    def __str__(self):
        return self.signature


class AuditRecord(models.Model):
    """One change made, or tried, through the API, the admin site or a management command (swr/audit.py)."""

    class Source(models.TextChoices):
        API = "api", "API"
        ADMIN = "admin", "Admin site"
        COMMAND = "command", "Management command"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    source = models.CharField(max_length=8, choices=Source.choices)
    # History refers to users and tenants without a database constraint: a constraint would make
    # every audited change lock the user's and the tenant's rows (the tenant's is updated by every
    # create) until it commits. Deleting a user or a tenant still empties these columns.
    user = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False
    )
    username = models.CharField(max_length=150, blank=True, default="", help_text="Kept when the user is deleted.")
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # swr_audit_tenant_time starts with the tenant
    )
    action = models.CharField(max_length=64, help_text="What was done, e.g. repository.create.")
    object = models.CharField(max_length=512, blank=True, default="", help_text="What it was done to.")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="HTTP status of a refused or failed attempt; empty for a change made."
    )
    detail = models.CharField(max_length=512, blank=True, default="", help_text="Error code and message, if any.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="swr_audit_tenant_time"),
            # Exact lookups of a request's id only (a CharField's db_index adds a LIKE index too).
            models.Index(fields=["request_id"], name="swr_audit_request_id"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.object} {self.outcome}"


# The registry's facts (spec section 9). Bytes live in the blob storage (swr/distribution/storage.py), stored
# once per content; which repository holds which blob, manifest and tag is here, changed by the registry's
# services (swr/distribution/services.py) in the transaction of the request.

TAG_PATTERN = r"\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z"  # \Z: "$" would let a final newline in
TAG_MAX_LENGTH = 128
MEDIA_TYPE_MAX_LENGTH = 255


def _digest_check(field: str, *, blank: bool = False) -> models.CheckConstraint:
    condition = models.Q(**{f"{field}__regex": digests.PATTERN})
    if blank:
        condition |= models.Q(**{field: ""})
    return models.CheckConstraint(
        condition=condition,
        name=f"%(app_label)s_%(class)s_{field}_valid",
        violation_error_message="A digest is sha256:<64 hex digits> or sha512:<128 hex digits>.",
    )


class Blob(models.Model):
    """Content stored once, whatever number of repositories hold it, addressed by its digest."""

    digest = models.CharField(max_length=digests.MAX_LENGTH)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["digest"], name="%(app_label)s_%(class)s_unique_digest"),
            _digest_check("digest"),
        ]

    def __str__(self) -> str:
        return self.digest


class RepositoryBlob(models.Model):
    """A repository holds a blob: pushed into it, mounted into it, or referenced by one of its manifests."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_links", db_index=False)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="repository_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "blob"], name="%(app_label)s_%(class)s_unique_link"),
        ]

    def __str__(self) -> str:
        return f"{self.repository} holds {self.blob}"


class Manifest(models.Model):
    """A manifest pushed into a repository: its bytes as pushed, and what the registry reads from them."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="manifests", db_index=False)
    digest = models.CharField(max_length=digests.MAX_LENGTH)
    media_type = models.CharField(max_length=MEDIA_TYPE_MAX_LENGTH)
    size = models.PositiveIntegerField(help_text="Bytes of the manifest itself.")
    content = models.BinaryField(help_text="The manifest as pushed (at most SWR_MAX_MANIFEST_BYTES).")
    config_digest = models.CharField(max_length=digests.MAX_LENGTH, blank=True, default="")
    artifact_type = models.CharField(max_length=MEDIA_TYPE_MAX_LENGTH, blank=True, default="")
    subject_digest = models.CharField(
        max_length=digests.MAX_LENGTH, blank=True, default="", help_text="The manifest this one refers to."
    )
    image_size = models.PositiveBigIntegerField(
        default=0, help_text="Bytes of the image: config and layers, or the sum over an index's manifests."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="%(app_label)s_%(class)s_unique_digest"),
            _digest_check("digest"),
            _digest_check("config_digest", blank=True),
            _digest_check("subject_digest", blank=True),
        ]
        indexes = [
            models.Index(
                fields=["repository", "subject_digest"],
                name="swr_manifest_subject",
                condition=~models.Q(subject_digest=""),
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"


class ManifestBlob(models.Model):
    """A blob a manifest refers to (its config and layers): kept while the manifest is."""

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="blob_refs", db_index=False)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["manifest", "blob"], name="%(app_label)s_%(class)s_unique_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.manifest} refers to {self.blob}"


class Tag(models.Model):
    """A name for a manifest in a repository; one manifest per tag name."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags", db_index=False)
    name = models.CharField(max_length=TAG_MAX_LENGTH)
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="tags")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "name"], name="%(app_label)s_%(class)s_unique_name"),
            models.CheckConstraint(
                condition=models.Q(name__regex=TAG_PATTERN),
                name="%(app_label)s_%(class)s_name_valid",
                violation_error_message="A tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.",
            ),
        ]
        # The tag lists by update time (spec section 10): a marker page starts where the index says, at any
        # depth (the list by name walks the unique constraint's index).
        indexes = [models.Index(fields=["repository", "updated_at", "id"], name="swr_tag_list_updated")]

    def __str__(self) -> str:
        return f"{self.repository}:{self.name}"


class Upload(models.Model):
    """A blob upload session (OCI distribution-spec "Pushing blobs"): its bytes so far, in parts.

    Each PATCH stores its bytes as one part (``uploads/<id>/<number>`` in the blob storage) and records
    here how many bytes the session holds, so any worker or node can take the next request. The SHA-256
    of the bytes so far is known while they arrive in one request; ``sha256`` keeps it while the session
    holds exactly one part, and the final PUT of a one-part upload needs no second read. An upload of
    several parts is hashed at its end by reading the parts once, in a stream (Python's hash objects
    cannot be saved between requests).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="uploads")
    size = models.PositiveBigIntegerField(default=0, help_text="Bytes received so far.")
    parts = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=digests.MAX_LENGTH, blank=True, default="")
    digest = models.CharField(
        max_length=digests.MAX_LENGTH,
        blank=True,
        default="",
        help_text="The blob the session is ending as (set by its final PUT before the bytes are committed): "
        "the garbage collector keeps that blob while the session lives (swr/distribution/gc.py).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [_digest_check("sha256", blank=True), _digest_check("digest", blank=True)]
        indexes = [models.Index(fields=["digest"], name="swr_upload_digest", condition=~models.Q(digest=""))]

    def __str__(self) -> str:
        return str(self.id)
