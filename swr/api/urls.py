"""Routes of the SWR management API, mounted at /v2/manage/. A trailing slash is optional."""

from django.urls import re_path

from swr.api import views

# A path segment: anything but '/'. A repository name writes its own '/' as '$'.
SEGMENT = r"[^/]+"

urlpatterns = [
    re_path(r"^namespaces/?$", views.NamespaceViewSet.as_view({"post": "create"}), name="namespace-list"),
    re_path(
        rf"^namespaces/(?P<namespace>{SEGMENT})/repos/?$",
        views.RepositoryViewSet.as_view({"post": "create"}),
        name="repository-list",
    ),
]
