"""Root URLs: API versions, the SWR management API under /v2/manage/, the OpenAPI document and the admin.

Django's own error pages are replaced by the SWR error body, so that an
unknown URL, an unknown Host header or an unhandled error answers JSON like
every API error (the CSRF failure page too: settings.CSRF_FAILURE_VIEW).
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from swr import health
from swr.api.auth_views import TokenView
from swr.api.errors import only_get
from swr.api.views import VersionsView

urlpatterns = [
    path("", VersionsView.as_view(), name="versions"),
    path("v2", VersionsView.as_view(), name="versions-v2"),
    path("v2/manage/", include("swr.api.urls")),
    path("v3/auth/tokens", TokenView.as_view(), name="auth-tokens"),
    # Documents, read with GET only: any other method answers 405 with the error body.
    path("openapi.json", only_get(SpectacularJSONAPIView.as_view()), name="openapi"),
    path("docs/", only_get(SpectacularSwaggerView.as_view(url_name="openapi")), name="docs"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler400 = "swr.api.errors.bad_request"
handler403 = "swr.api.errors.permission_denied"
handler404 = "swr.api.errors.page_not_found"
handler500 = "swr.api.errors.server_error"
