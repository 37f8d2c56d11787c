"""Routes of the registry (OCI distribution-spec v1.1, spec section 9), mounted at /v2/.

``<name>`` is ``<namespace>/<repository>`` and may hold '/': the routes match it loosely and the
views judge it by the naming rules (NAME_INVALID), so that a bad name gets the OCI answer, not a 404.
"""

from django.urls import path, re_path

from swr.api.registry import views

NAME = r"(?P<name>.+?)"

urlpatterns = [
    path("", views.version_check, name="registry-check"),
    re_path(r"^_catalog$", views.catalog, name="registry-catalog"),
    re_path(rf"^{NAME}/manifests/(?P<reference>[^/]+)$", views.manifest, name="registry-manifest"),
    re_path(rf"^{NAME}/blobs/uploads/$", views.upload_start, name="registry-upload-start"),
    re_path(rf"^{NAME}/blobs/uploads/(?P<upload_id>[^/]+)$", views.upload, name="registry-upload"),
    re_path(rf"^{NAME}/blobs/(?P<digest>[^/]+)$", views.blob, name="registry-blob"),
    re_path(rf"^{NAME}/tags/list$", views.tags_list, name="registry-tags"),
    re_path(rf"^{NAME}/referrers/(?P<digest>[^/]+)$", views.referrers, name="registry-referrers"),
]
