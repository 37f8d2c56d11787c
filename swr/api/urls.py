"""Routes of the service's HTTP API: versions, login, the management API under /v2/manage/, the registry's
token endpoint, the OpenAPI document, health checks. Mounted at the root by registry/urls.py.

Path parameters never contain '/': a repository name writes its own '/' as '$'.
"""

from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from swr.api import access_views, health, share_views, tag_views, views
from swr.api.auth_views import TokenView
from swr.api.errors import only_get
from swr.api.registry import token_views

ACCESS_ACTIONS = {"get": "list", "post": "create", "patch": "partial_update", "delete": "destroy"}

manage_patterns = [
    path("namespaces", views.NamespaceViewSet.as_view({"get": "list", "post": "create"}), name="namespace-list"),
    path(
        "namespaces/<str:namespace>",
        views.NamespaceViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="namespace-detail",
    ),
    path(
        "namespaces/<str:namespace>/repos",
        views.RepositoryViewSet.as_view({"post": "create"}),
        name="repository-create",
    ),
    path(
        "namespaces/<str:namespace>/repos/<str:repository>",
        views.RepositoryViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="repository-detail",
    ),
    path(
        "namespaces/<str:namespace>/access",
        access_views.NamespaceAccessViewSet.as_view(ACCESS_ACTIONS),
        name="namespace-access",
    ),
    path(
        "namespaces/<str:namespace>/repos/<str:repository>/access",
        access_views.RepositoryAccessViewSet.as_view(ACCESS_ACTIONS),
        name="repository-access",
    ),
    path(
        "namespaces/<str:namespace>/repos/<str:repository>/tags",
        tag_views.TagViewSet.as_view({"get": "list", "post": "create"}),
        name="tag-list",
    ),
    path(
        "namespaces/<str:namespace>/repos/<str:repository>/tags/<str:tag>",
        tag_views.TagViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="tag-detail",
    ),
    path("projects/<str:project_id>/quotas", access_views.QuotaView.as_view(), name="quotas"),
    path("repos", views.RepositoryListViewSet.as_view({"get": "list"}), name="repository-list"),
    path("overview", views.OverviewView.as_view(), name="overview"),
    # Docker login credentials (spec section 11) and shared repositories (spec section 12).
    path("utils/secret", share_views.SecretView.as_view(), name="utils-secret"),
    path("utils/authorizationtoken", share_views.AuthorizationTokenView.as_view(), name="utils-authorizationtoken"),
    path(
        "namespaces/<str:namespace>/repositories/<str:repository>/access-domains",
        share_views.ShareViewSet.as_view({"get": "list", "post": "create"}),
        name="repository-shares",
    ),
    path(
        "namespaces/<str:namespace>/repositories/<str:repository>/access-domains/<str:access_domain>",
        share_views.ShareViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="repository-share",
    ),
    path(
        "shared-repositories",
        share_views.SharedRepositoryListViewSet.as_view({"get": "list"}),
        name="shared-repository-list",
    ),
]

# Version 3 of the management API: the lists paged by markers (spec sections 10, 12, 13).
manage_v3_patterns = [
    path("repos", tag_views.RepositoryListV3ViewSet.as_view({"get": "list"}), name="repository-list-v3"),
    path(
        "namespaces/<str:namespace>/repos/<str:repository>/tags",
        tag_views.TagListV3ViewSet.as_view({"get": "list"}),
        name="tag-list-v3",
    ),
    path(
        "shared-repositories",
        share_views.SharedRepositoryV3ListViewSet.as_view({"get": "list"}),
        name="shared-repository-list-v3",
    ),
]

urlpatterns = [
    path("", views.VersionsView.as_view(), name="versions"),
    path("v2", views.VersionsView.as_view(), name="versions-v2"),
    path("v2/manage/", include(manage_patterns)),
    # The registry (OCI distribution API): /v2/ and /v2/<namespace>/<repository>/..., after the management API.
    path("v2/", include("swr.api.registry.urls")),
    path("v3/auth/tokens", TokenView.as_view(), name="auth-tokens"),
    path("v3/manage/", include(manage_v3_patterns)),
    # The registry's token endpoint (spec section 9): bearer tokens for the routes under /v2/.
    path("service/token", token_views.token, name="registry-token"),
    # Documents, read with GET only: any other method answers 405 with the error body.
    path("openapi.json", only_get(SpectacularJSONAPIView.as_view()), name="openapi"),
    path("docs/", only_get(SpectacularSwaggerView.as_view(url_name="openapi")), name="docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
