"""Routes of the SWR management API, mounted at /v2/manage/.

Path parameters never contain '/': a repository name writes its own '/' as '$'.
"""

from django.urls import path

from swr.api import access_views, views

ACCESS_ACTIONS = {"get": "list", "post": "create", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
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
    path("projects/<str:project_id>/quotas", access_views.QuotaView.as_view(), name="quotas"),
    path("repos", views.RepositoryListViewSet.as_view({"get": "list"}), name="repository-list"),
    path("overview", views.OverviewView.as_view(), name="overview"),
]
