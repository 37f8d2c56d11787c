"""The service's routes plus probes of the registry's authorization, for tests/test_registry_auth.py.

Each probe calls the auth contract the registry's views use (swr/api/registry/auth.py) and answers what it
decided: 200 with the caller, or the OCI error answer (swr/api/registry/errors.py). They test the
authentication and permissions apart from the registry's own views.
"""

from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from swr.api.registry import auth
from swr.api.registry.errors import oci_error_response
from swr.distribution.errors import OciError


def _answer(request, decide):
    try:
        caller = decide()
        body = {}
        if request.GET.get("who"):
            body["user"] = caller.user.username if caller.user else None
        if request.GET.get("may"):
            body["may"] = sorted(caller.actions(request.GET["may"]))
        return JsonResponse(body)
    except OciError as error:
        return oci_error_response(error, request)


@csrf_exempt
def repository(request, actions: str, name: str):
    """Authorize ``actions`` (comma-separated) on ``name``; ``?from=`` names a mount's source."""
    wanted = set(actions.split(","))
    return _answer(request, lambda: auth.authorize(request, name, wanted, mount_from=request.GET.get("from")))


def catalog(request):
    return _answer(request, lambda: auth.authorize_catalog(request))


def check(request):
    return _answer(request, lambda: auth.authenticate(request, required=True))


urlpatterns = [
    re_path(r"^probe/repository/(?P<actions>[a-z,]+)/(?P<name>.+)$", repository),
    path("probe/catalog", catalog),
    path("probe/check", check),
    path("", include("registry.urls")),
]
