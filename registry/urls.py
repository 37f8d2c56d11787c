"""Root URLs: API versions, the SWR management API under /v2/manage/, the OpenAPI document and the admin.

Django's own error pages are replaced by the SWR error body, so that an
unknown URL or an unhandled error answers JSON like every API error.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from swr import health
from swr.api.auth_views import TokenView
from swr.api.views import VersionsView

urlpatterns = [
    path("", VersionsView.as_view(), name="versions"),
    path("v2", VersionsView.as_view(), name="versions-v2"),
    path("v2/manage/", include("swr.api.urls")),
    path("v3/auth/tokens", TokenView.as_view(), name="auth-tokens"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler400 = "swr.api.errors.bad_request"
handler403 = "swr.api.errors.permission_denied"
handler404 = "swr.api.errors.page_not_found"
handler500 = "swr.api.errors.server_error"
