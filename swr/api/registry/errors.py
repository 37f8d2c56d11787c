"""The registry's error answers: an OciError (swr/distribution/errors.py) as the body registry clients parse.

``{"errors": [{"code", "message", "detail"}]}`` with the error's status (spec section 9), never SWR's error
body. A 401 carries the Bearer challenge that tells a client where to get a token, and for what; a 429 its
Retry-After.
"""

from django.http import JsonResponse
from django.urls import reverse

from swr.api import hosts
from swr.distribution.errors import OciError, TooManyRequests, Unauthorized


def token_realm(request) -> str:
    """The token endpoint, as the client reached this service: ``<base URL>/service/token``."""
    return request.build_absolute_uri(reverse("registry-token"))


def bearer_challenge(request, scope: str | None = None, reason: str | None = None) -> str:
    """``WWW-Authenticate`` of a 401 on the registry routes (spec section 9):
    ``Bearer realm="<base URL>/service/token",service="<registry host>",scope="<scope>"``, and RFC 6750's
    ``error`` when a token was sent and cannot be used (``reason``)."""
    value = f'Bearer realm="{token_realm(request)}",service="{hosts.registry_host(request)}"'
    if scope:
        value += f',scope="{scope}"'
    if reason:
        value += f',error="{reason}"'
    return value


def basic_challenge(request) -> str:
    """``WWW-Authenticate`` of a 401 of the token endpoint itself: it takes HTTP Basic credentials."""
    return f'Basic realm="{hosts.registry_host(request)}",charset="UTF-8"'


def oci_error_response(error: OciError, request) -> JsonResponse:
    """``{"errors": [{"code", "message", "detail"}]}`` with the error's status, as JSON; a 401 carries the Bearer
    challenge (with the error's scope), a 429 its Retry-After."""
    response = JsonResponse(error.body, status=error.status_code)
    if isinstance(error, Unauthorized):
        response["WWW-Authenticate"] = bearer_challenge(request, error.scope, error.reason)
    if isinstance(error, TooManyRequests) and error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response
