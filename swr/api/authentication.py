"""X-Auth-Token authentication."""

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from swr.api.errors import AuthenticationFailed
from swr.models import ApiToken

HEADER = "X-Auth-Token"


class TokenAuthentication(BaseAuthentication):
    """A bearer token in X-Auth-Token, looked up by its SHA-256 in one query."""

    def authenticate(self, request):
        raw = request.headers.get(HEADER)
        if raw is None:
            return None
        token = ApiToken.objects.select_related("user__tenant").filter(key_hash=ApiToken.hash_key(raw.strip())).first()
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("Authentication failed: the token is not valid.")
        if token.revoked_at is not None:
            raise AuthenticationFailed("Authentication failed: the token has been revoked.")
        if token.expires_at <= timezone.now():
            raise AuthenticationFailed("Authentication failed: the token has expired.")
        return token.user, token

    def authenticate_header(self, request):
        return f'{HEADER} realm="swr"'
