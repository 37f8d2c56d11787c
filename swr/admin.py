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
from swr.models import ApiToken, Namespace, NamespacePermission, Repository, Tenant, User


class ServiceCreateMixin:
    """Create new objects through a service instead of ``obj.save()``.

    The form has already checked the rules and uniqueness; should another
    request take the name in between, the service's conflict error is shown
    as a message on the add form instead of an error page.
    """

    def service_create(self, obj):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            obj.pk = self.service_create(obj).pk

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except SwrError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "domain_id", "project_id", "created_at"]
    search_fields = ["name", "domain_id", "project_id"]
    readonly_fields = ["domain_id", "project_id", "created_at"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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
    actions = ["issue_token"]

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


class RepositoryInline(admin.TabularInline):
    """The repositories of an organization; new ones are added on the repository page."""

    model = Repository
    fields = ["name", "category", "is_public", "description", "created_at"]
    readonly_fields = ["name", "created_at"]
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


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


@admin.register(Repository)
class RepositoryAdmin(ServiceCreateMixin, admin.ModelAdmin):
    list_display = ["name", "namespace", "category", "is_public", "creator", "created_at", "updated_at"]
    list_filter = ["category", "is_public", "namespace"]
    list_select_related = ["namespace", "creator"]
    search_fields = ["name"]
    raw_id_fields = ["creator"]
    readonly_fields = ["created_at", "updated_at"]

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


@admin.register(NamespacePermission)
class NamespacePermissionAdmin(admin.ModelAdmin):
    list_display = ["namespace", "user", "level", "updated_at"]
    list_filter = ["level"]
    list_select_related = ["namespace", "user"]
    search_fields = ["namespace__name", "user__username"]
    raw_id_fields = ["namespace", "user"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
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
        self.message_user(request, f"Revoked {queryset.count()} token(s).", level=messages.SUCCESS)
