"""Admin site: staff manage tenants, users, namespaces, repositories, grants and tokens.

New namespaces and repositories are saved through the same services as the
API, so the creator's grant and the conflict rules are the same everywhere.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpResponseRedirect
from django.utils.html import format_html

from swr import services
from swr.api.errors import SwrError
from swr.models import (
    AccessKey,
    ApiToken,
    AuditRecord,
    Namespace,
    NamespacePermission,
    Repository,
    RepositoryPermission,
    Tenant,
    User,
)


def _audit(request, action: str, obj) -> None:
    services.audit_record(
        source="admin",
        action=action,
        obj=f"{obj._meta.model_name}:{obj.pk} {obj}",
        success=True,
        user=request.user,
        request_id=getattr(request, "request_id", ""),
    )


class AuditedAdmin(admin.ModelAdmin):
    """Every add, change and delete made in the admin site also leaves an audit record."""

    def log_addition(self, request, obj, message):
        _audit(request, f"{obj._meta.model_name}.create", obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        _audit(request, f"{obj._meta.model_name}.update", obj)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            _audit(request, f"{obj._meta.model_name}.delete", obj)
        return super().log_deletions(request, queryset)


class ServiceCreateMixin(AuditedAdmin):
    """Create and delete objects through the services instead of ``obj.save()`` and ``obj.delete()``.

    The form has already checked the rules and uniqueness; should another
    request take the name in between, the service's conflict error is shown
    as a message on the add form instead of an error page.
    """

    def service_create(self, obj):
        raise NotImplementedError

    def service_delete(self, obj):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            obj.pk = self.service_create(obj).pk

    def delete_model(self, request, obj):
        self.service_delete(obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.service_delete(obj)

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except SwrError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


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


@admin.register(User)
class UserAdmin(AuditedAdmin, DjangoUserAdmin):
    list_display = ["username", "tenant", "is_tenant_admin", "is_staff", "is_active"]
    list_filter = ["tenant", "is_tenant_admin", "is_staff", "is_active"]
    list_select_related = ["tenant"]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        ("Tenant", {"fields": ["tenant", "is_tenant_admin"]}),
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("Tenant", {"fields": ["tenant", "is_tenant_admin"]}),
    ]
    actions = ["issue_token", "issue_access_key"]

    @admin.action(description="Issue an API token (shown once)")
    def issue_token(self, request, queryset):
        for user in queryset:
            token, raw = services.token_issue(user=user)
            self.message_user(
                request,
                format_html(
                    "Token for {} (expires {}): <code>{}</code> — copy it now, it is not shown again.",
                    user.username,
                    token.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                    raw,
                ),
                level=messages.SUCCESS,
            )
            _audit(request, "apitoken.create", token)

    @admin.action(description="Issue an AK/SK pair (the secret key is shown once)")
    def issue_access_key(self, request, queryset):
        for user in queryset:
            key, secret_key = services.access_key_issue(user=user)
            self.message_user(
                request,
                format_html(
                    "Access key for {}: AK <code>{}</code> SK <code>{}</code> — copy the SK now, "
                    "it is not shown again.",
                    user.username,
                    key.access_key,
                    secret_key,
                ),
                level=messages.SUCCESS,
            )
            _audit(request, "accesskey.create", key)


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


class NamespacePermissionInline(admin.TabularInline):
    model = NamespacePermission
    fields = ["user", "level"]
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Namespace)
class NamespaceAdmin(ServiceCreateMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "creator", "created_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant", "creator"]
    search_fields = ["name"]
    raw_id_fields = ["creator"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [RepositoryInline, NamespacePermissionInline]

    def get_readonly_fields(self, request, obj=None):
        # Pull addresses contain the name: it is fixed once the organization exists.
        return [*self.readonly_fields, "name", "tenant"] if obj else self.readonly_fields

    def service_create(self, obj):
        return services.namespace_create(name=obj.name, tenant=obj.tenant, creator=obj.creator)

    def service_delete(self, obj):
        services.namespace_delete(namespace=obj)


@admin.register(Repository)
class RepositoryAdmin(ServiceCreateMixin, admin.ModelAdmin):
    list_display = ["name", "namespace", "category", "is_public", "creator", "created_at", "updated_at"]
    list_filter = ["category", "is_public", "namespace"]
    list_select_related = ["namespace", "creator"]
    search_fields = ["name"]
    raw_id_fields = ["creator"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [RepositoryPermissionInline]

    def get_readonly_fields(self, request, obj=None):
        # As in the API, a repository's name and organization are fixed once it exists.
        return [*self.readonly_fields, "name", "namespace"] if obj else self.readonly_fields

    def service_create(self, obj):
        return services.repository_create(
            namespace=obj.namespace,
            name=obj.name,
            is_public=obj.is_public,
            category=obj.category,
            description=obj.description,
            creator=obj.creator,
        )

    def service_delete(self, obj):
        services.repository_delete(repository=obj)


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


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
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

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.token_revoke(token=token)
            _audit(request, "apitoken.revoke", token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", level=messages.SUCCESS)


@admin.register(AccessKey)
class AccessKeyAdmin(AuditedAdmin):
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

    @admin.action(description="Disable the selected access keys")
    def disable(self, request, queryset):
        for key in queryset:
            key.is_active = False
            key.save(update_fields=["is_active"])
            _audit(request, "accesskey.disable", key)

    @admin.action(description="Enable the selected access keys")
    def enable(self, request, queryset):
        for key in queryset:
            key.is_active = True
            key.save(update_fields=["is_active"])
            _audit(request, "accesskey.enable", key)


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    """The audit trail: read-only."""

    list_display = ["created_at", "source", "username", "tenant", "action", "object", "outcome", "status_code"]
    list_filter = ["source", "outcome", "action", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["username", "object", "request_id", "action"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
