"""Admin site: staff manage tenants, users, organizations, repositories, grants and credentials.

New organizations and repositories are saved and deleted (also by "delete
selected") through the same services as the API, so the creator's grant, the
quota counters and the conflict rules are the same everywhere. Models keep
SWR's internal name "namespace"; the admin says "organization", as the API
documentation and the README do.

Rights (issue 11). A staff account can do in the admin what its Django
permissions say, and never hands out more rights than it holds itself:

- Every action that changes data needs a permission on its model (superusers
  hold them all): "Revoke" needs change on API tokens; "Disable" and "Enable"
  need change on access keys; Django's "Delete selected" needs delete.
  Revoking, disabling, enabling (which re-issues a disabled key), changing or
  deleting a credential follows the rule below for its owner.
- Setting a user's password (Django's password form) mints a credential too:
  it needs the same rights as "Issue an API token" for that user.
- "Issue an API token" and "Issue an AK/SK pair" (user list) mint a credential
  that acts as the selected user, so they need change on users AND add on the
  credential's model (API token, resp. access key).
- A staff account that is not a superuser never acts on a user with more rights
  than its own: a superuser, or a user who holds (directly or through a group,
  active or not) a permission the staff account lacks. Such a user can be
  viewed, but not changed, given a password, deleted or issued a credential.
  Django itself lets "change user" do all of that to anybody; here only a
  superuser issues credentials for a superuser. For the same reason the
  superuser flag is read-only to non-superusers, and the permissions and groups
  they can give (to users, or to groups) are those within their own rights.
- No list can be filtered through the URL by a column that holds a secret or
  its hash (:data:`SECRET_FIELDS`), directly or across relations: the filter
  would be an oracle (``?key_hash__startswith=ac3b`` counts the matching rows).
  Such a lookup answers 400 (Django's DisallowedModelAdminLookup, rendered by
  the project's handler400), and so does a regular expression (``__regex``).
- No value of a list's query string, nor the autocomplete's search term, ends
  in a 500 (SwrModelAdmin): it answers 400, or finds nothing.
- Grants, organization creators and repository creators name users of the same
  tenant: the models' ``clean()`` says so, and the admin's forms and inlines
  and the services all run it.
"""

import contextlib

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy

from swr import audit, services
from swr.audit import Actor
from swr.errors import NamespaceNotFound, RepositoryNotFound, ShareNotFound, SwrError, error_response
from swr.models import (
    AccessKey,
    ApiToken,
    AuditRecord,
    Manifest,
    Namespace,
    NamespacePermission,
    Repository,
    RepositoryPermission,
    RepositoryShare,
    Tag,
    TemporaryLogin,
    Tenant,
    User,
)

admin.site.site_header = "SWR registry administration"
admin.site.site_title = "SWR registry admin"
admin.site.index_title = "Tenants, users, organizations and repositories"
admin.site.site_url = "/docs/"  # "View site": the API's Swagger UI

# Columns that hold a secret, its hash or its ciphertext: never a filter of any list.
SECRET_FIELDS = frozenset(
    {
        User._meta.get_field("password"),
        ApiToken._meta.get_field("key_hash"),
        AccessKey._meta.get_field("secret_encrypted"),
        TemporaryLogin._meta.get_field("secret_hash"),
    }
)


# Lookups no list offers, refused in the query string: a pattern of the client's would run in the
# database (a malformed one fails there; on SQLite, Python's re runs it, with no bound on its time).
REFUSED_LOOKUPS = frozenset({"regex", "iregex"})


def touches_secret(model, lookup: str, fields=SECRET_FIELDS) -> bool:
    """Whether a changelist lookup such as ``user__password__startswith`` reads a column of ``fields``
    (SECRET_FIELDS by default)."""
    for part in lookup.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False  # a transform or a lookup type: the path of fields ends here
        if field in fields:
            return True
        if not field.is_relation or field.related_model is None:
            return False
        model = field.related_model
    return False


def _held_permissions(user: User):
    """The permissions ``user`` holds, directly or through a group, whether the account is active or not."""
    return Permission.objects.filter(Q(user=user) | Q(group__user=user)).distinct()


def _names(permissions) -> set[str]:
    return {
        f"{app_label}.{codename}"
        for app_label, codename in permissions.values_list("content_type__app_label", "codename")
    }


def within_rights(actor: User, target: User) -> bool:
    """May staff account ``actor`` change, delete or issue credentials for ``target``?

    A superuser may act on anybody; anybody else only on users who are not
    superusers and whose permissions are all among the actor's own.
    """
    if actor.is_superuser:
        return True
    return not target.is_superuser and _names(_held_permissions(target)) <= actor.get_all_permissions()


def _groups_within_rights(actor: User):
    """The groups whose permissions are all among ``actor``'s own."""
    return Group.objects.exclude(permissions__in=Permission.objects.exclude(pk__in=_held_permissions(actor)))


def _actor(request) -> Actor:
    """The staff account of an admin request, as the services and the audit trail take it."""
    return Actor.of_request(request, audit.Source.ADMIN)


def _audit(request, action: str, obj, *, success: bool = True, status_code: int | None = None, detail="") -> None:
    """Record a change the admin made without a service (in the view's transaction), or one it refused."""
    audit.record(
        _actor(request),
        action,
        f"{obj._meta.model_name}:{obj.pk} {obj}",
        success=success,
        status_code=status_code,
        detail=detail,
    )


class _InvalidListQuery(Exception):
    """A value of a list's query string that the list cannot use (see SwrModelAdmin.changelist_view)."""


class SwrModelAdmin(admin.ModelAdmin):
    """The base of every model admin of the site.

    No list is filtered by a secret column, and no value of a list's query
    string (filters, search ``q``, date hierarchy, ordering ``o``, page ``p``)
    ends in a 500: a NUL character (PostgreSQL text holds none), a number or a
    date out of range, or a value the column refuses answers 400 with the
    error body (Django would redirect to ``?e=1``, or fail). A search for NUL,
    also from the autocomplete view, finds nothing.
    """

    def lookup_allowed(self, lookup, value, request):
        return (
            not touches_secret(self.model, lookup)
            and lookup.rpartition("__")[2] not in REFUSED_LOOKUPS
            and super().lookup_allowed(lookup, value, request)
        )

    def get_search_results(self, request, queryset, search_term):
        if "\x00" in search_term:
            return queryset.none(), False  # no text column holds a NUL (PostgreSQL refuses it)
        return super().get_search_results(request, queryset, search_term)

    def get_changelist_instance(self, request):
        # The ChangeList builds the filters and counts the rows here.
        try:
            return super().get_changelist_instance(request)
        except (IncorrectLookupParameters, OverflowError) as exc:
            raise _InvalidListQuery(str(exc).strip("[]'\"")) from exc

    def changelist_view(self, request, extra_context=None):
        if any("\x00" in key or "\x00" in value for key, values in request.GET.lists() for value in values):
            return error_response(SwrError("The query string holds a NUL character (%00): remove it."))
        try:
            return super().changelist_view(request, extra_context)
        except _InvalidListQuery as exc:
            return error_response(
                SwrError(
                    f"Invalid filter, search, date, ordering or page in the query string ({exc}): "
                    "use the list's own links, or remove the parameter."
                )
            )


class AuditedAdmin(SwrModelAdmin):
    """Every add, change and delete made in the admin site also leaves an audit record.

    Django's admin views save the object and log it (``log_addition`` ...) in one transaction, so the
    record is stored with the change. Where a service makes the change (``audited_by_services``), the
    service records it, and these hooks leave it to the service.
    """

    audited_by_services = False

    def log_addition(self, request, obj, message):
        if not self.audited_by_services:
            _audit(request, f"{obj._meta.model_name}.create", obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        _audit(request, f"{obj._meta.model_name}.update", obj)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        if not self.audited_by_services:
            for obj in queryset:
                _audit(request, f"{obj._meta.model_name}.delete", obj)
        return super().log_deletions(request, queryset)

    def _refused_by_database(self, request, view, *args, **kwargs):
        """``view``'s answer; if the database refuses the form's rows at commit (a row they refer to, such as
        an inline grant's user, was deleted by another request meanwhile), a message and the form again."""
        try:
            return view(request, *args, **kwargs)
        except IntegrityError:
            # The view said "saved successfully" before the commit failed: keep only the other messages.
            kept = [message for message in messages.get_messages(request) if message.level != messages.SUCCESS]
            for message in kept:
                messages.add_message(request, message.level, message.message, extra_tags=message.extra_tags)
            self.message_user(
                request,
                "Nothing was saved: a row this form refers to was deleted or changed by another request "
                "meanwhile. Check the form and save again.",
                level=messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())

    def add_view(self, request, *args, **kwargs):
        return self._refused_by_database(request, super().add_view, *args, **kwargs)

    def change_view(self, request, *args, **kwargs):
        return self._refused_by_database(request, super().change_view, *args, **kwargs)


class NotAllDeleted(Exception):
    """Some objects of a "delete selected" were refused by the service: ``deleted`` went, ``refused`` says why
    the others did not."""

    def __init__(self, deleted: int, refused: list[str]):
        super().__init__(deleted, refused)
        self.deleted, self.refused = deleted, refused


class ServiceCreateMixin(AuditedAdmin):
    """Create and delete objects through the services instead of ``obj.save()`` and ``obj.delete()``.

    The form has already checked the rules and uniqueness; should another
    request change things in between (take the name, delete the object or its
    organization, create a repository in the organization being deleted), the
    service's error (SwrError) is shown as a message, on the form, the delete
    page or the list, instead of an error page. A change saved while another
    request deleted the object is refused (not saved as a new row).
    """

    actions = ["delete_selected"]
    audited_by_services = True
    gone_error = SwrError  # the 404 of the model, raised when a change finds its row deleted

    def service_create(self, obj, actor: Actor):
        raise NotImplementedError

    def service_delete(self, obj, actor: Actor):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        if not change:
            obj.pk = self.service_create(obj, _actor(request)).pk
            return
        try:
            # An UPDATE only: the row, if still there, stays locked until the form's rows are saved; a plain
            # save() would insert a deleted row again, past the quota count and without its grants.
            with transaction.atomic():
                obj.save(force_update=True)
        except DatabaseError:
            if type(obj).objects.filter(pk=obj.pk).exists():
                raise
            raise self.gone_error(
                f"{obj._meta.verbose_name.capitalize()} {str(obj)!r} was deleted by another request meanwhile: "
                "nothing was saved."
            ) from None

    def delete_model(self, request, obj):
        self.service_delete(obj, _actor(request))

    def delete_queryset(self, request, queryset):
        """Each object in its own service call (one transaction each, in the services' lock order); those the
        service refuses are left, audited as refused, and reported (``NotAllDeleted``)."""
        refused = []
        for obj in queryset:
            try:
                self.service_delete(obj, _actor(request))
            except SwrError as exc:
                _audit(
                    request,
                    f"{obj._meta.model_name}.delete",
                    obj,
                    success=False,
                    status_code=exc.status_code,
                    detail=exc.message,
                )
                refused.append(exc.message)
        if refused:
            raise NotAllDeleted(len(queryset) - len(refused), refused)

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except SwrError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, *args, **kwargs):
        # Django's delete view is one transaction: on an error nothing is deleted or logged.
        try:
            return super().delete_view(request, *args, **kwargs)
        except SwrError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.action(permissions=["delete"], description=gettext_lazy("Delete selected %(verbose_name_plural)s"))
    def delete_selected(self, request, queryset):
        """Django's "delete selected"; the objects the service refuses (an organization that another request
        filled meanwhile, a repository deleted meanwhile) are shown as errors, with how many were deleted."""
        try:
            return delete_selected(self, request, queryset)
        except NotAllDeleted as exc:
            if exc.deleted:
                self.message_user(request, f"Deleted {exc.deleted} of {exc.deleted + len(exc.refused)}.")
            for message in exc.refused:
                self.message_user(request, f"Not deleted: {message}", level=messages.ERROR)
            return None


@admin.register(Tenant)
class TenantAdmin(AuditedAdmin):
    list_display = ["name", "domain_id", "project_id", "namespace_usage", "repository_usage", "created_at"]
    search_fields = ["name", "domain_id", "project_id"]
    fields = [
        "name", "domain_id", "project_id", "namespace_quota", "namespace_count", "repository_quota",
        "repository_count", "created_at",
    ]  # fmt: skip
    readonly_fields = ["domain_id", "project_id", "namespace_count", "repository_count", "created_at"]

    @admin.display(description="organizations (used / quota)")
    def namespace_usage(self, tenant):
        return f"{tenant.namespace_count} / {tenant.quota('namespace')}"

    @admin.display(description="repositories (used / quota)")
    def repository_usage(self, tenant):
        return f"{tenant.repository_count} / {tenant.quota('repository')}"


class RightsLimitedMixin:
    """Non-superusers give only the permissions and groups within their own rights (see the module docstring)."""

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            if db_field.name in ("permissions", "user_permissions"):
                kwargs["queryset"] = _held_permissions(request.user)
            elif db_field.name == "groups":
                kwargs["queryset"] = _groups_within_rights(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(RightsLimitedMixin, AuditedAdmin, DjangoGroupAdmin):
    """Django's group admin; a non-superuser changes only the groups within their rights."""

    def _within_rights(self, request, group) -> bool:
        return request.user.is_superuser or _names(group.permissions.all()) <= request.user.get_all_permissions()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or self._within_rights(request, obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or self._within_rights(request, obj))


@admin.register(User)
class UserAdmin(RightsLimitedMixin, AuditedAdmin, DjangoUserAdmin):
    list_display = ["username", "tenant", "is_tenant_admin", "is_staff", "is_active"]
    list_filter = ["tenant", "is_tenant_admin", "is_staff", "is_active"]
    list_select_related = ["tenant"]
    # The tenant right after the name and personal info (Django's first fieldsets), before permissions and dates.
    fieldsets = [
        *DjangoUserAdmin.fieldsets[:2],
        ("Tenant", {"fields": ["tenant", "is_tenant_admin"]}),
        *DjangoUserAdmin.fieldsets[2:],
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("Tenant", {"fields": ["tenant", "is_tenant_admin"]}),
    ]
    actions = ["issue_token", "issue_access_key"]

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or within_rights(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or within_rights(request.user, obj))

    def has_add_permission(self, request):
        """Adding a user sets its password, a credential: it also needs add on API tokens (as issuing one does)."""
        opts = ApiToken._meta
        return super().has_add_permission(request) and request.user.has_perm(
            f"{opts.app_label}.{get_permission_codename('add', opts)}"
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if request.user.is_superuser else [*readonly, "is_superuser"]

    def _may_issue(self, request, credential_model, user: User | None = None) -> bool:
        """Change on users (and on ``user``, when given: not outranked) and add on ``credential_model``."""
        opts = credential_model._meta
        return self.has_change_permission(request, user) and request.user.has_perm(
            f"{opts.app_label}.{get_permission_codename('add', opts)}"
        )

    def user_change_password(self, request, id, form_url=""):
        """Django's password form of a user: a password is a credential, so it needs the rights to issue a token.

        That is change on users and add on API tokens, for a user who does not
        outrank the staff account (module docstring); otherwise 403.
        """
        user = self.get_object(request, unquote(id))
        if user is not None and not self._may_issue(request, ApiToken, user):
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def has_issue_token_permission(self, request):
        return self._may_issue(request, ApiToken)

    def has_issue_access_key_permission(self, request):
        return self._may_issue(request, AccessKey)

    def _credential_holders(self, request, queryset, action: str) -> list[User]:
        """The selected users; none (with a message and audit records) if one of them outranks the staff account."""
        users = list(queryset.select_related("tenant"))
        refused = [user for user in users if not self.has_change_permission(request, user)]
        for user in refused:
            _audit(
                request, action, user, success=False, status_code=403, detail="The user holds rights you do not hold."
            )
        if refused:
            self.message_user(
                request,
                f"Nothing issued: {', '.join(user.username for user in refused)} hold rights you do not hold "
                "(a superuser's credentials are issued only by a superuser).",
                level=messages.ERROR,
            )
            return []
        return users

    @staticmethod
    def _tenant_line(user: User):
        if user.tenant is None:
            return "no tenant: the API gives this user nothing until one is set"
        return format_html(
            "user id <code>{}</code>, tenant {}, PROJECT_ID <code>{}</code>",
            user.pk,
            user.tenant.name,
            user.tenant.project_id,
        )

    @admin.action(description="Issue an API token (shown once)", permissions=["issue_token"])
    def issue_token(self, request, queryset):
        for user in self._credential_holders(request, queryset, "apitoken.create"):
            token, raw = services.token_issue(user=user, actor=_actor(request))
            self.message_user(
                request,
                format_html(
                    "Token for {} ({}), expires {}: <code>{}</code> — send it as X-Auth-Token; "
                    "copy it now, it is not shown again.",
                    user.username,
                    self._tenant_line(user),
                    token.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                    raw,
                ),
                level=messages.SUCCESS,
            )

    @admin.action(description="Issue an AK/SK pair (the secret key is shown once)", permissions=["issue_access_key"])
    def issue_access_key(self, request, queryset):
        for user in self._credential_holders(request, queryset, "accesskey.create"):
            key, secret_key = services.access_key_issue(user=user, actor=_actor(request))
            self.message_user(
                request,
                format_html(
                    "Access key for {} ({}): AK <code>{}</code> SK <code>{}</code> — the SDK takes "
                    "BasicCredentials(AK, SK, PROJECT_ID); copy the SK now, it is not shown again.",
                    user.username,
                    self._tenant_line(user),
                    key.access_key,
                    secret_key,
                ),
                level=messages.SUCCESS,
            )


class RepositoryInline(admin.TabularInline):
    """The repositories of an organization; new ones are added on the repository page."""

    model = Repository
    fields = ["name", "category", "is_public", "description", "created_at"]
    readonly_fields = ["name", "created_at"]
    extra = 0
    show_change_link = True
    can_delete = False  # deleted on the repository page, through the service that keeps the quota count

    def has_add_permission(self, request, obj=None):
        return False


class RepositoryPermissionInline(admin.TabularInline):
    model = RepositoryPermission
    fields = ["user", "level"]
    raw_id_fields = ["user"]
    extra = 0


class NamespaceGrantFormSet(BaseInlineFormSet):
    """The grants typed on an organization's page; on the add page, none for the creator (who gets manage)."""

    def clean(self):
        super().clean()
        creator = self.instance.creator if self.instance.pk is None else None
        for form in self.forms:
            data = getattr(form, "cleaned_data", {})
            if creator is not None and data.get("user") == creator and not data.get("DELETE"):
                form.add_error("user", "The creator gets the manage permission with the organization.")


class NamespacePermissionInline(admin.TabularInline):
    model = NamespacePermission
    formset = NamespaceGrantFormSet
    fields = ["user", "level"]
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Namespace)
class NamespaceAdmin(ServiceCreateMixin):
    list_display = ["name", "tenant", "creator", "created_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant", "creator"]
    # Also what the organization field of the repository page searches (autocomplete_fields).
    search_fields = ["name", "tenant__name"]
    raw_id_fields = ["creator"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [RepositoryInline, NamespacePermissionInline]

    def get_readonly_fields(self, request, obj=None):
        # Pull addresses contain the name: it is fixed once the organization exists.
        return [*self.readonly_fields, "name", "tenant"] if obj else self.readonly_fields

    def service_create(self, obj, actor):
        return services.namespace_create(name=obj.name, tenant=obj.tenant, creator=obj.creator, actor=actor)

    gone_error = NamespaceNotFound

    def service_delete(self, obj, actor):
        services.namespace_delete(namespace=obj, actor=actor)


@admin.register(Repository)
class RepositoryAdmin(ServiceCreateMixin):
    list_display = ["name", "namespace", "category", "is_public", "creator", "created_at", "updated_at"]
    list_filter = ["category", "is_public", "namespace"]
    list_select_related = ["namespace", "creator"]
    search_fields = ["name"]
    # Organizations of every tenant: searched as the user types, not listed in one select.
    autocomplete_fields = ["namespace"]
    raw_id_fields = ["creator"]
    readonly_fields = ["created_at", "updated_at", "images"]
    inlines = [RepositoryPermissionInline]

    def get_readonly_fields(self, request, obj=None):
        # As in the API, a repository's name and organization are fixed once it exists.
        return [*self.readonly_fields, "name", "namespace"] if obj else self.readonly_fields

    @admin.display(description="images")
    def images(self, repository):
        """Links to the repository's tags and manifests (paged lists of their own: a repository may hold many)."""
        if repository.pk is None:
            return "-"
        tags = Tag.objects.filter(repository=repository).count()
        manifests = Manifest.objects.filter(repository=repository).count()
        query = f"?repository__id__exact={repository.pk}"
        return format_html(
            '<a href="{}{}">{} tags</a>, <a href="{}{}">{} manifests</a>',
            reverse("admin:swr_tag_changelist"),
            query,
            tags,
            reverse("admin:swr_manifest_changelist"),
            query,
            manifests,
        )

    def service_create(self, obj, actor):
        return services.repository_create(
            namespace=obj.namespace,
            name=obj.name,
            is_public=obj.is_public,
            category=obj.category,
            description=obj.description,
            creator=obj.creator,
            actor=actor,
        )

    gone_error = RepositoryNotFound

    def service_delete(self, obj, actor):
        services.repository_delete(repository=obj, actor=actor)


@admin.register(NamespacePermission)
class NamespacePermissionAdmin(AuditedAdmin):
    list_display = ["namespace", "user", "level", "updated_at"]
    list_filter = ["level"]
    list_select_related = ["namespace", "user"]
    search_fields = ["namespace__name", "user__username"]
    raw_id_fields = ["namespace", "user"]


@admin.register(RepositoryPermission)
class RepositoryPermissionAdmin(AuditedAdmin):
    list_display = ["repository", "user", "level", "updated_at"]
    list_filter = ["level"]
    list_select_related = ["repository__namespace", "user"]
    search_fields = ["repository__name", "repository__namespace__name", "user__username"]
    raw_id_fields = ["repository", "user"]


class CredentialAdmin(AuditedAdmin):
    """Tokens and access keys: a staff account acts only on those of users who do not outrank it.

    Enabling a disabled access key re-issues it, and disabling or revoking (or
    deleting) one is a change to its owner's account: the same rule as for
    issuing (module docstring, :func:`within_rights`).
    """

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or within_rights(request.user, obj.user))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or within_rights(request.user, obj.user))

    def _credentials(self, request, queryset, action: str) -> list:
        """The selected credentials; none (with a message and audit records) if an owner outranks the staff account."""
        credentials = list(queryset.select_related("user"))
        refused = [obj for obj in credentials if not within_rights(request.user, obj.user)]
        for obj in refused:
            _audit(
                request, action, obj, success=False, status_code=403, detail="The owner holds rights you do not hold."
            )
        if refused:
            owners = sorted({obj.user.username for obj in refused})
            self.message_user(
                request,
                f"Nothing changed: {', '.join(owners)} hold rights you do not hold "
                "(a superuser's credentials are changed only by a superuser).",
                level=messages.ERROR,
            )
            return []
        return credentials


@admin.register(ApiToken)
class ApiTokenAdmin(CredentialAdmin):
    list_display = ["hint", "user", "created_at", "expires_at", "revoked_at", "is_active"]
    list_filter = ["revoked_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "hint"]
    fields = ["user", "hint", "created_at", "expires_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(boolean=True)
    def is_active(self, obj):
        return obj.is_active

    def has_add_permission(self, request):
        # Tokens are issued with the "Issue an API token" action of the user list.
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        tokens = self._credentials(request, queryset, "apitoken.revoke")
        for token in tokens:
            services.token_revoke(token=token, actor=_actor(request))
        if tokens:
            self.message_user(request, f"Revoked {len(tokens)} token(s).", level=messages.SUCCESS)


@admin.register(AccessKey)
class AccessKeyAdmin(CredentialAdmin):
    """AK/SK pairs. The secret key is never shown here: it is shown once, when issued from the user list."""

    list_display = ["access_key", "user", "is_active", "description", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["user"]
    search_fields = ["access_key", "user__username"]
    fields = ["access_key", "user", "is_active", "description", "created_at"]
    readonly_fields = ["access_key", "user", "created_at"]
    actions = ["disable", "enable"]

    def has_add_permission(self, request):
        # Pairs are issued with the "Issue an AK/SK pair" action of the user list.
        return False

    @admin.action(description="Disable the selected access keys", permissions=["change"])
    def disable(self, request, queryset):
        for key in self._credentials(request, queryset, "accesskey.disable"):
            key.is_active = False
            key.save(update_fields=["is_active"])
            _audit(request, "accesskey.disable", key)

    @admin.action(description="Enable the selected access keys", permissions=["change"])
    def enable(self, request, queryset):
        for key in self._credentials(request, queryset, "accesskey.enable"):
            key.is_active = True
            key.save(update_fields=["is_active"])
            _audit(request, "accesskey.enable", key)


class RegistryRowAdmin(SwrModelAdmin):
    """Rows the registry writes (spec section 9): read-only here. They change by a push, a delete or the tag API,
    whose services keep the counters and the audit trail; a list per repository is
    ``?repository__id__exact=<id>`` (the repository's page links to it)."""

    list_select_related = ["repository__namespace"]
    search_fields = ["repository__name", "repository__namespace__name"]
    # Manifest documents are bytes to read, not values to compare (a text in the query string cannot be one):
    # of the lookups on them only __isnull is allowed; another answers 400.
    UNFILTERED = frozenset({Manifest._meta.get_field("content")})

    def lookup_allowed(self, lookup, value, request):
        compares_bytes = touches_secret(self.model, lookup, self.UNFILTERED) and not lookup.endswith("__isnull")
        return not compares_bytes and super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="repository", ordering="repository__name")
    def repository_name(self, row):
        return f"{row.repository.namespace.name}/{row.repository.name}"


@admin.register(Tag)
class TagAdmin(RegistryRowAdmin):
    list_display = ["name", "repository_name", "digest", "image_size", "updated_at"]
    list_select_related = ["repository__namespace", "manifest"]
    search_fields = ["name", *RegistryRowAdmin.search_fields]
    fields = ["repository", "name", "manifest_link", "created_at", "updated_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("manifest__content")

    @admin.display(description="manifest digest", ordering="manifest__digest")
    def digest(self, tag):
        return tag.manifest.digest

    @admin.display(description="image bytes", ordering="manifest__image_size")
    def image_size(self, tag):
        return tag.manifest.image_size

    @admin.display(description="manifest")
    def manifest_link(self, tag):
        url = reverse("admin:swr_manifest_change", args=[tag.manifest_id])
        return format_html('<a href="{}">{}</a>', url, tag.manifest.digest)


@admin.register(Manifest)
class ManifestAdmin(RegistryRowAdmin):
    list_display = ["digest", "repository_name", "media_type", "image_size", "size", "created_at"]
    search_fields = ["digest", *RegistryRowAdmin.search_fields]
    fields = [
        "repository", "digest", "media_type", "size", "image_size", "config_digest", "artifact_type",
        "subject_digest", "created_at", "tag_names", "document",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # The lists leave the documents (up to 4 MiB each) in the database; the page of one shows it.
        match = getattr(request, "resolver_match", None)
        return queryset if match is not None and match.url_name == "swr_manifest_change" else queryset.defer("content")

    @admin.display(description="tags")
    def tag_names(self, manifest):
        """The first 50 tag names, and how many more (the tag list of the repository has them all)."""
        names = list(manifest.tags.order_by("name").values_list("name", flat=True)[:51])
        more = manifest.tags.count() - 50 if len(names) > 50 else 0
        return ", ".join(names[:50]) + (f" and {more} more" if more else "") or "-"

    @admin.display(description="document")
    def document(self, manifest):
        return format_html("<pre>{}</pre>", bytes(manifest.content).decode("utf-8", "replace"))


@admin.register(TemporaryLogin)
class TemporaryLoginAdmin(CredentialAdmin):
    """Temporary registry logins of spec section 11, with their expiry. The secret is never shown (only its hash
    is stored, and the hash is not shown either). Deleting one revokes it at once, through the service."""

    list_display = ["identifier", "kind", "user", "created_at", "expires_at", "is_active"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    search_fields = ["identifier", "user__username"]
    fields = ["identifier", "kind", "user", "created_at", "expires_at"]
    readonly_fields = fields
    audited_by_services = True

    @admin.display(boolean=True, description="active")
    def is_active(self, obj):
        return obj.is_active

    def has_add_permission(self, request):
        # Issued by POST /v2/manage/utils/secret and .../authorizationtoken only.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.temporary_login_revoke(login=obj, actor=_actor(request))

    def delete_queryset(self, request, queryset):
        for login in self._credentials(request, queryset, "temporarylogin.delete"):
            services.temporary_login_revoke(login=login, actor=_actor(request))


@admin.register(RepositoryShare)
class RepositoryShareAdmin(AuditedAdmin):
    """Repositories shared with other tenants (spec section 12), with their deadlines. Shares are made and changed
    through the API by the repository's managers; staff may stop one (delete), through the service."""

    list_display = ["repository", "access_domain", "permit", "deadline", "is_live", "creator", "updated_at"]
    list_filter = ["permit", "access_domain"]
    list_select_related = ["repository__namespace", "access_domain", "creator"]
    search_fields = ["repository__name", "repository__namespace__name", "access_domain__name"]
    fields = ["repository", "access_domain", "permit", "deadline", "description", "creator", "created_at", "updated_at"]
    readonly_fields = fields
    audited_by_services = True

    @admin.display(boolean=True, description="live")
    def is_live(self, obj):
        return obj.is_live

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.share_delete(repository=obj.repository, access_domain=obj.access_domain, actor=_actor(request))

    def delete_queryset(self, request, queryset):
        for share in queryset.select_related("repository__namespace", "access_domain"):
            with contextlib.suppress(ShareNotFound):  # stopped by another request meanwhile
                services.share_delete(
                    repository=share.repository, access_domain=share.access_domain, actor=_actor(request)
                )


@admin.register(AuditRecord)
class AuditRecordAdmin(SwrModelAdmin):
    """The audit trail: read-only. The outcome and status come first, so that a refusal is seen at a glance."""

    # Outcome and status first; long values cut short (whole on hover, and on the record's page), so
    # that every column fits a 1400-pixel-wide window.
    list_display = ["created_at", "outcome", "status", "action", "short_object", "username", "tenant", "source"]
    list_filter = ["outcome", "source", "action", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["username", "object", "request_id", "action"]
    date_hierarchy = "created_at"

    @admin.display(description="status", ordering="status_code")
    def status(self, record):
        return record.status_code

    @admin.display(description="object", ordering="object")
    def short_object(self, record):
        return format_html('<span title="{}">{}</span>', record.object, Truncator(record.object).chars(32))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# django-q2 (the scheduled garbage collection, swr/tasks.py): its queue, schedule and task results are the
# service's own (the schedule is kept by `migrate` from SWR_GC_INTERVAL_MINUTES), not for staff to change. A run
# that removed anything is in the audit trail (registry.gc); a failed run is in the worker's log.
def _hide_task_queue_admin() -> None:
    from django_q.models import Failure, OrmQ, Schedule, Success

    for model in (OrmQ, Schedule, Success, Failure):
        if admin.site.is_registered(model):
            admin.site.unregister(model)


_hide_task_queue_admin()
