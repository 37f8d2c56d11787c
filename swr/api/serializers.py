"""Request shapes of the management API.

Serializers check types and shapes; the rules of a value (names, choices,
lengths) belong to the model, whose ``full_clean()`` the service runs before
it writes, so that the API and the admin give the same messages; the API
reports them under its own field names (``ModelValidatedSerializer.model_rules``).
"""

import json
from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.fields import ProhibitNullCharactersValidator, get_error_detail

from swr import names, policy
from swr.api import hosts
from swr.choices import CATEGORY_ALIASES, Category, PermissionLevel
from swr.distribution.manifests import INDEXES
from swr.models import DESCRIPTION_MAX_LENGTH, Namespace, Repository


@extend_schema_field(OpenApiTypes.BOOL)
class SwrBooleanField(serializers.Field):
    """A strict boolean: JSON true/false; in form bodies the strings true/false in any case."""

    default_error_messages = {
        "required": "is_public is required: true or false.",
        "null": "is_public must be true or false, not null.",
        "invalid": "is_public must be true or false, not {input!r}.",
    }
    error_code = "invalid_is_public"

    def fail(self, key, **kwargs):
        raise serializers.ValidationError(self.error_messages[key].format(**kwargs), code=self.error_code)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        from_form = isinstance(self.root.initial_data, QueryDict)
        if from_form and isinstance(data, str) and data.lower() in ("true", "false"):
            return data.lower() == "true"
        self.fail("invalid", input=data)

    def to_representation(self, value):
        return bool(value)


def json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages: 'a number', 'a list' ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else type(value).__name__


class StringField(serializers.CharField):
    """A string that must be a JSON string: a number, boolean, list or object is refused, never turned into text.

    DRF's CharField turns the numbers 123 and 1.5 into "123" and "1.5"; spec section 1
    makes types strict. Form bodies hold text only, so they pass as before.
    """

    default_error_messages = {"invalid": "must be a string, not {type}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", type=json_type(data))
        return super().to_internal_value(data)


class CategoryField(StringField):
    """A repository category; the model checks the choice, this accepts the old spelling 'arms'."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return CATEGORY_ALIASES.get(value, value)


class NameField(StringField):
    """A name, passed to the model untouched: the naming rule judges blanks, white space and every character."""

    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, trim_whitespace=False, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class ModelValidatedSerializer(serializers.Serializer):
    """Types and shapes here; the rules of the values are the model's, which the service checks once.

    Wrap the service call in :meth:`model_rules`: the model's ``full_clean()`` errors
    (names, choices, lengths) come back as this serializer's errors, under the API's
    field names, as if the serializer had found them.
    """

    @contextmanager
    def model_rules(self):
        try:
            yield
        except DjangoValidationError as exc:
            names_by_source = {field.source: name for name, field in self.fields.items()}
            errors = get_error_detail(exc)
            raise serializers.ValidationError({names_by_source.get(k, k): v for k, v in errors.items()}) from None


class NamespaceCreateSerializer(ModelValidatedSerializer):
    """Body of ``POST /v2/manage/namespaces`` (spec section 4)."""

    namespace = NameField(
        source="name",
        help_text=f"Organization name: 1-{names.NAMESPACE.max_length} characters, lower-case letters, digits, "
        "'.', '_' and '-'; starts with a letter.",
    )


class RepositoryCreateSerializer(ModelValidatedSerializer):
    """Body of ``POST /v2/manage/namespaces/{namespace}/repos`` (spec section 3)."""

    repository = NameField(
        source="name",
        help_text=f"Image repository name: 1-{names.REPOSITORY.max_length} characters, lower-case letters, "
        "digits, '.', '/', '_' and '-'.",
    )
    is_public = SwrBooleanField(help_text="Whether every tenant may pull the repository.")
    category = CategoryField(
        required=False,
        default=Category.OTHER,
        trim_whitespace=False,
        help_text="One of " + ", ".join(Category.values) + " ('arms' is read as 'arm'). Default: other.",
    )
    description = StringField(
        required=False,
        default="",
        allow_blank=True,
        trim_whitespace=False,
        help_text=f"Free text, at most {DESCRIPTION_MAX_LENGTH} characters.",
    )


class RepositoryUpdateSerializer(ModelValidatedSerializer):
    """Body of ``PATCH /v2/manage/namespaces/{namespace}/repos/{repository}``: ``is_public`` is required (section 5)."""

    is_public = SwrBooleanField(help_text="Whether every tenant may pull the repository.")
    category = CategoryField(
        required=False,
        trim_whitespace=False,
        help_text="One of " + ", ".join(Category.values) + " ('arms' is read as 'arm'). Unchanged when absent.",
    )
    description = StringField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text=f"Free text, at most {DESCRIPTION_MAX_LENGTH} characters. Unchanged when absent.",
    )


# Answers.


def pull_path(host: str, repository: Repository) -> str:
    return f"{host}/{repository.namespace.name}/{repository.name}"


class RepositoryAddressMixin(serializers.Serializer):
    path = serializers.SerializerMethodField(help_text="Pull address: <registry host>/<namespace>/<repository>.")
    internal_path = serializers.SerializerMethodField(help_text="Pull address inside the platform's network.")

    def get_path(self, repository) -> str:
        return pull_path(hosts.registry_host(self.context["request"]), repository)

    def get_internal_path(self, repository) -> str:
        return pull_path(hosts.internal_registry_host(self.context["request"]), repository)


class RepositoryListItemSerializer(RepositoryAddressMixin, serializers.ModelSerializer):
    """One row of ``GET /v2/manage/repos``."""

    logo = serializers.SerializerMethodField(help_text="Logo URL; empty.")
    url = serializers.SerializerMethodField(help_text="Image URL; empty.")
    domain_name = serializers.CharField(source="namespace.tenant.name", help_text="Tenant (domain) name.")
    namespace = serializers.CharField(source="namespace.name", help_text="Organization name.")
    tags = serializers.SerializerMethodField(help_text="Tag names of the repository's images, in lexical order.")
    status = serializers.SerializerMethodField(help_text="Whether the repository is in service.")
    total_range = serializers.SerializerMethodField(help_text="Number of repositories matching the query.")

    class Meta:
        model = Repository
        fields = [
            "name", "category", "description", "size", "is_public", "num_images", "num_download",
            "created_at", "updated_at", "logo", "url", "path", "internal_path", "domain_name", "namespace",
            "tags", "status", "total_range",
        ]  # fmt: skip

    def get_logo(self, repository) -> str:
        return ""

    def get_url(self, repository) -> str:
        return ""

    def get_tags(self, repository) -> list[str]:
        """The repository's tag names, in lexical order (loaded for the whole page at once: the view prefetches)."""
        return sorted(tag.name for tag in repository.tags.all())

    def get_status(self, repository) -> bool:
        return True

    def get_total_range(self, repository) -> int:
        return self.context["total"]


class RepositoryDetailSerializer(RepositoryAddressMixin, serializers.ModelSerializer):
    """``GET /v2/manage/namespaces/{namespace}/repos/{repository}``."""

    ns_id = serializers.IntegerField(source="namespace_id", help_text="Organization id.")
    creator_id = serializers.SerializerMethodField(help_text="Id of the user who created it.")
    creator_name = serializers.SerializerMethodField(help_text="Name of the user who created it.")
    url = serializers.SerializerMethodField(help_text="Image URL; empty.")
    created = serializers.DateTimeField(source="created_at", help_text="Creation time, UTC.")
    updated = serializers.DateTimeField(source="updated_at", help_text="Last change, UTC.")
    domain_id = serializers.CharField(source="namespace.tenant.domain_id", help_text="Tenant (domain) id.")
    priority = serializers.SerializerMethodField(help_text="Display priority; 0.")

    class Meta:
        model = Repository
        fields = [
            "id", "ns_id", "name", "category", "description", "creator_id", "creator_name", "size", "is_public",
            "num_images", "num_download", "url", "path", "internal_path", "created", "updated", "domain_id",
            "priority",
        ]  # fmt: skip

    def get_creator_id(self, repository) -> str:
        return str(repository.creator_id or "")

    def get_creator_name(self, repository) -> str:
        return repository.creator.username if repository.creator else ""

    def get_url(self, repository) -> str:
        return ""

    def get_priority(self, repository) -> int:
        return 0


class NamespaceSerializer(serializers.ModelSerializer):
    """An organization as the caller sees it."""

    creator_name = serializers.SerializerMethodField(help_text="Name of the user who created it.")
    auth = serializers.SerializerMethodField(help_text="Your permission level: 7 manage, 3 edit, 1 read.")

    class Meta:
        model = Namespace
        fields = ["id", "name", "creator_name", "auth"]

    def get_creator_name(self, namespace) -> str:
        return namespace.creator.username if namespace.creator else ""

    def get_auth(self, namespace) -> int:
        # Listed with mode::visible for a repository grant only: the organization can at least be seen.
        return policy.namespace_level(self.context["request"].user, namespace) or PermissionLevel.READ


@extend_schema_serializer(many=False)  # the listing is one object that holds the list, not a bare array
class NamespaceListSerializer(serializers.Serializer):
    namespaces = NamespaceSerializer(many=True)


class EmptySerializer(serializers.Serializer):
    """The body ``{}`` of a successful create or update."""


class ErrorDetailSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="The field or parameter at fault, if any.")
    error_msg = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The SWR error body of every 4xx and 5xx answer."""

    error_code = serializers.CharField(help_text="SWR error code, e.g. SVCSTG.SWR.4001029.")
    error_msg = serializers.CharField(help_text="What went wrong, for a person to act on.")
    errorCode = serializers.CharField(help_text="Same as error_code (older SWR format).")  # noqa: N815
    errorMessage = serializers.CharField(help_text="Same as error_msg (older SWR format).")  # noqa: N815
    details = ErrorDetailSerializer(many=True)


# User ids are the primary keys of swr.User, a BigAutoField: 1 to 2**63 - 1 on every engine.
USER_ID_MAX = 2**63 - 1


@extend_schema_field({"type": "string", "pattern": "^[0-9]+$"})
class UserIdField(StringField):
    """A user id: a JSON string of ASCII digits naming a possible id (spec section 1).

    ``str.isdigit`` also accepts '²', '①' and other scripts' digits, and an id past the
    column's range cannot name a user: both are refused here, with the same 400 as any
    other string that is not an id. The value comes back without leading zeros.
    """

    default_error_messages = {
        "not_an_id": "{input!r} is not a user id: user ids are ASCII digits, from 1 to " + f"{USER_ID_MAX}.",
    }

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= USER_ID_MAX:
            self.fail("not_an_id", input=value)
        return str(int(value))


@extend_schema_field({"type": "integer", "enum": PermissionLevel.values})
class PermissionLevelField(serializers.Field):
    """A permission level: the JSON number 1, 3 or 7, and nothing else ("7", 7.0 and true are refused)."""

    default_error_messages = {
        "required": "auth is required: 7 (manage), 3 (edit) or 1 (read).",
        "null": "Invalid permission value null: use the number 7 (manage), 3 (edit) or 1 (read).",
        "invalid": "Invalid permission value {input} ({type}): use the number 7 (manage), 3 (edit) or 1 (read).",
    }
    error_code = "invalid_permission"

    def fail(self, key, **kwargs):
        code = "required" if key == "required" else self.error_code
        raise serializers.ValidationError(self.error_messages[key].format(**kwargs), code=code)

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and data in PermissionLevel.values:
            return data
        self.fail("invalid", input=json.dumps(data, default=repr), type=json_type(data))

    def to_representation(self, value):
        return int(value)


class UserAuthSerializer(serializers.Serializer):
    """One user's permission: ``{"user_id", "user_name", "auth"}``."""

    user_id = UserIdField(help_text="Id of a user of the same tenant (POST /v3/auth/tokens tells it): ASCII digits.")
    user_name = StringField(required=False, allow_blank=True, help_text="The user's name (informative).")
    auth = PermissionLevelField(help_text="7 manage, 3 edit, 1 read: the JSON number.")


class GrantListSerializer(serializers.ListSerializer):
    child = UserAuthSerializer()

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one entry.")
        ids = [entry["user_id"] for entry in attrs]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Each user may appear only once.")
        return attrs


class UserIdListSerializer(serializers.ListSerializer):
    child = UserIdField(help_text="A user id: ASCII digits.")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one user id.")
        return attrs


class AccessSerializer(serializers.Serializer):
    """Who holds which permission on an organization or a repository."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    creator_name = serializers.CharField()
    self_auth = UserAuthSerializer(help_text="Your own level.")
    others_auths = UserAuthSerializer(many=True, help_text="The grants of the other users.")


class QuotaSerializer(serializers.Serializer):
    quota_key = serializers.CharField(help_text="namespace or repository")
    quota_limit = serializers.IntegerField()
    used = serializers.IntegerField()
    unit = serializers.CharField()


class QuotasSerializer(serializers.Serializer):
    quotas = QuotaSerializer(many=True)


# Image tags (spec section 10).


class BooleanField(SwrBooleanField):
    """A strict boolean (JSON true/false; form bodies: true/false in any case), any field, the generic code."""

    default_error_messages = {
        "required": "is required: true or false.",
        "null": "must be true or false, not null.",
        "invalid": "must be true or false, not {input!r}.",
    }
    error_code = "invalid"


class TagCopySerializer(serializers.Serializer):
    """Body of ``POST .../repos/{repository}/tags``: point ``destination_tag`` at the image of ``source_tag``."""

    source_tag = StringField(trim_whitespace=False, help_text="An existing tag of the repository.")
    destination_tag = StringField(
        trim_whitespace=False,
        help_text="The tag to create (or, with override, to move): [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.",
    )
    override = BooleanField(
        required=False, default=False, help_text="Move destination_tag when it exists (else 409). Default false."
    )


class TagSerializer(serializers.Serializer):
    """One image tag as the v3 list and ``GET .../tags/{tag}`` show it (spec section 10).

    The view gives the repository (with its organization and tenant) in the context, so a page costs no query
    per tag; ``with_manifest`` (context, default true) leaves the manifest out (an empty string) when false.
    """

    id = serializers.IntegerField(help_text="Tag id.")
    repo_id = serializers.IntegerField(source="repository_id", help_text="Image repository id.")
    tag = serializers.CharField(source="name", help_text="Tag name.")
    image_id = serializers.SerializerMethodField(
        help_text="Digest of the image's config (the manifest's digest when it has none)."
    )
    manifest = serializers.SerializerMethodField(help_text="The manifest document as a JSON string.")
    digest = serializers.CharField(source="manifest.digest", help_text="Digest of the manifest.")
    schema = serializers.SerializerMethodField(help_text="Manifest schema version: 2.")
    path = serializers.SerializerMethodField(help_text="Pull address: <registry host>/<namespace>/<repository>:<tag>.")
    internal_path = serializers.SerializerMethodField(help_text="Pull address inside the platform's network.")
    size = serializers.IntegerField(
        source="manifest.image_size", help_text="Bytes of the image: config and layers, or the sum over an index."
    )
    is_trusted = serializers.SerializerMethodField(help_text="Signed image: false.")
    created = serializers.DateTimeField(source="created_at", help_text="When the tag was created, UTC.")
    updated = serializers.DateTimeField(source="updated_at", help_text="When the tag last moved, UTC.")
    domain_id = serializers.SerializerMethodField(help_text="Tenant (domain) id.")
    tag_type = serializers.SerializerMethodField(help_text="0: an image manifest; 1: an index (manifest list).")

    def get_image_id(self, tag) -> str:
        return tag.manifest.config_digest or tag.manifest.digest

    def get_manifest(self, tag) -> str:
        if not self.context.get("with_manifest", True):
            return ""
        return bytes(tag.manifest.content).decode("utf-8", "replace")

    def get_schema(self, tag) -> int:
        return 2

    def _address(self, host: str, tag) -> str:
        return f"{pull_path(host, self.context['repository'])}:{tag.name}"

    def get_path(self, tag) -> str:
        return self._address(hosts.registry_host(self.context["request"]), tag)

    def get_internal_path(self, tag) -> str:
        return self._address(hosts.internal_registry_host(self.context["request"]), tag)

    def get_is_trusted(self, tag) -> bool:
        return False

    def get_domain_id(self, tag) -> str:
        return self.context["repository"].namespace.tenant.domain_id

    def get_tag_type(self, tag) -> int:
        return 1 if tag.manifest.media_type in INDEXES else 0


class TagV2Serializer(TagSerializer):
    """One row of the v2 tag list: SWR's capital-T ``Tag``, with ``deleted`` (null) and ``scanned`` (false)."""

    deleted = serializers.SerializerMethodField(help_text="Always null.")
    scanned = serializers.SerializerMethodField(help_text="Vulnerability scan done: false.")

    Tag = serializers.CharField(source="name", help_text="Tag name (SWR spells this field with a capital T).")

    def get_fields(self):
        fields = super().get_fields()
        del fields["tag"]
        return fields

    def get_deleted(self, tag) -> str | None:
        return None

    def get_scanned(self, tag) -> bool:
        return False
