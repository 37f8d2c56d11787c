"""OpenAPI helpers: the X-Auth-Token scheme and the documented error answers."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from swr.api.serializers import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "Invalid input: see error_code and details.",
    401: "Missing or invalid credentials (SVCSTG.SWR.4010000).",
    403: "Another tenant's resource (SVCSTG.SWR.4039001) or a permission level too low (SVCSTG.SWR.4039002).",
    404: "Not found.",
    405: "Method not allowed on this URL (SVCSTG.SWR.4050000).",
    406: "The organization still holds repositories (SVCSTG.SWR.4060074).",
    409: "Already exists.",
    413: f"Request body over {settings.SWR_MAX_BODY_BYTES / 1024 / 1024:g} MiB (SVCSTG.SWR.4131001).",
    414: f"URL (request line) over {settings.SWR_MAX_REQUEST_LINE_BYTES} bytes (SVCSTG.SWR.4141001).",
    415: "Unsupported Content-Type (SVCSTG.SWR.4150000).",
    429: "Too many failed logins for this user name (SVCSTG.SWR.4290001); try again after Retry-After seconds.",
    500: "Internal error (SVCSTG.SWR.5000046).",
}

# Answers any authenticated endpoint can give.
COMMON_ERRORS = (401, 405, 414, 500)  # any URL may answer these (414: swr/middleware.py)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Documented error answers with the SWR error body, for ``extend_schema(responses=...)``."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
        for status in sorted({*statuses, *COMMON_ERRORS})
    }


FILTER_PARAMETER = OpenApiParameter(
    "filter",
    str,
    OpenApiParameter.QUERY,
    required=False,
    description="The other parameters packed as key::value|key::value, e.g. namespace::group|order_type::desc.",
)

REPOSITORY_PATH_PARAMETER = OpenApiParameter(
    "repository", str, OpenApiParameter.PATH, description="Repository name with each '/' written as '$'."
)


# Swagger UI's Authorize dialog lists the schemes in the order of components.securitySchemes, which
# drf-spectacular sorts by name (upper case before lower case): the names put the token first, where a
# person pastes what swr_token or a password login gave them, and the AK/SK signature after it.


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "swr.api.authentication.TokenAuthentication"
    name = "XAuthToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Auth-Token",
            "description": "A token (swr_...) from `manage.py swr_token`, the admin, or the X-Subject-Token "
            "header of POST /v3/auth/tokens. Sent as the X-Auth-Token header.",
        }


class SignatureAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "swr.api.authentication.SignatureAuthentication"
    name = "akskSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=..., Signature=... with X-Sdk-Date, "
            "as the Huawei Cloud SDKs sign requests. Each request has its own signature: use an SDK, "
            "not this page (a token pasted here would be sent as Authorization and refused).",
        }
