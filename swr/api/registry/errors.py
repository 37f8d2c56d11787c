"""The registry's error answers: an OciError (swr/distribution/errors.py) as the body registry clients parse."""

from django.http import JsonResponse

from swr.api import hosts
from swr.distribution.errors import OciError, Unauthorized


def challenge(request, scope: str | None) -> str:
    """``WWW-Authenticate`` of a 401 on the registry routes (spec section 9): where and for what to get a token."""
    realm = request.build_absolute_uri("/service/token")
    value = f'Bearer realm="{realm}",service="{hosts.registry_host(request)}"'
    if scope:
        value += f',scope="{scope}"'
    return value


def oci_error_response(error: OciError, request) -> JsonResponse:
    """``{"errors": [{"code", "message", "detail"}]}`` with the error's status; a 401 carries the challenge."""
    response = JsonResponse(error.body, status=error.status_code)
    if isinstance(error, Unauthorized):
        response["WWW-Authenticate"] = challenge(request, error.scope)
    return response
