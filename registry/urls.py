"""Root URLs: the service's HTTP API (swr/api/urls.py) and the admin site.

Django's own error pages are replaced by the SWR error body, so that an
unknown URL, an unknown Host header or an unhandled error answers JSON like
every API error (the CSRF failure page too: settings.CSRF_FAILURE_VIEW).
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("swr.api.urls")),
]

handler400 = "swr.api.errors.bad_request"
handler403 = "swr.api.errors.permission_denied"
handler404 = "swr.api.errors.page_not_found"
handler500 = "swr.api.errors.server_error"
