"""Root URLs: the SWR management API under /v2/manage/ and the admin site.

Django's own error pages are replaced by the SWR error body, so that an
unknown URL or an unhandled error answers JSON like every API error.
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v2/manage/", include("swr.api.urls")),
]

handler400 = "swr.api.errors.bad_request"
handler403 = "swr.api.errors.permission_denied"
handler404 = "swr.api.errors.page_not_found"
handler500 = "swr.api.errors.server_error"
