"""``/service/token``: the registry's token endpoint (spec section 9; CNCF distribution's
docs/spec/auth/token.md and oauth.md).

``GET /service/token?service=<service>&scope=<scope>&scope=...`` with HTTP Basic credentials answers
``{"token", "access_token", "expires_in", "issued_at"}``: a bearer token (tokens.py) whose ``access`` claim
holds, of the actions asked for, those the user may do now. Each ``scope`` parameter may hold several
scopes, space-separated. Without a scope (``docker login``) it answers 200 once the credentials are good.
``POST`` with an OAuth2 password grant form (``grant_type=password``, ``username``, ``password``,
``service``, ``scope``), which containerd tries first, answers the same and the granted ``scope``.

The token is always for this registry: ``service`` is not checked, the token's audience is
SWR_REGISTRY_HOST. Without credentials it answers 401 with a Basic challenge, unless SWR_ANONYMOUS_PULL
lets it issue an anonymous token (pulls of public repositories). Bad credentials: 401; a locked password
login: 429 with Retry-After. Errors in the OCI body. Issuing a token changes nothing, so it leaves no audit
record; failed password logins are counted by django-axes.
"""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from swr.api import hosts
from swr.api.registry import auth, tokens
from swr.api.registry.errors import basic_challenge, oci_error_response
from swr.distribution.errors import OciError, Unauthorized, Unsupported

ALLOWED_METHODS = ("GET", "POST")


def _post_credentials(request) -> tuple[str, str] | None:
    """The credentials of an OAuth2 password grant: the form's ``username`` and ``password``, else HTTP Basic."""
    grant_type = request.POST.get("grant_type", "")
    if grant_type != "password":
        raise Unsupported(
            f"Unsupported grant_type {grant_type[:40]!r}: only 'password' (with username and password), or GET "
            "with HTTP Basic credentials.",
            status_code=400,
        )
    if "username" in request.POST:
        return request.POST["username"], request.POST.get("password", "")
    return auth.basic_credentials(request)


def _issue(request) -> JsonResponse:
    if request.method == "POST":
        params, credentials = request.POST, _post_credentials(request)
    else:
        params, credentials = request.GET, auth.basic_credentials(request)
    asked = tokens.parse_scopes(params.getlist("scope"))
    user = None
    if credentials is not None:
        user = request.user = auth.login(request, *credentials)
    elif not settings.SWR_ANONYMOUS_PULL:
        raise Unauthorized("Log in: HTTP Basic credentials are needed for a token.")
    granted, refused = auth.token_grants(user, asked)
    names = {} if user is None else {"username": user.username, "tenant": user.tenant.name if user.tenant else ""}
    issued = tokens.issue("" if user is None else str(user.pk), granted, refused, hosts.registry_host(request), **names)
    body = {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if request.method == "POST":  # OAuth2 answers the scope it granted
        body["scope"] = " ".join(
            f"{resource.type}:{resource.name}:{','.join(tokens.ordered(actions))}"
            for resource, actions in granted.items()
            if actions
        )
    return JsonResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@csrf_exempt
def token(request):
    """A bearer token for the scopes asked, holding the actions the credentials may do now."""
    try:
        if request.method not in ALLOWED_METHODS:
            raise Unsupported(f"Method {request.method} is not allowed here: use GET or POST.")
        return _issue(request)
    except OciError as error:
        response = oci_error_response(error, request)
        if isinstance(error, Unauthorized):
            response["WWW-Authenticate"] = basic_challenge(request)
        if request.method not in ALLOWED_METHODS:
            response["Allow"] = ", ".join(ALLOWED_METHODS)
        return response
