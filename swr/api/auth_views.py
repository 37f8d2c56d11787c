"""``POST /v3/auth/tokens``: password login in the IAM style, answering a token in ``X-Subject-Token``."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from swr import services
from swr.api.audit import AuditedMixin
from swr.api.errors import AuthenticationFailed
from swr.api.schema import errors
from swr.api.serializers import StringField


class _Domain(serializers.Serializer):
    name = StringField(help_text="Tenant (domain) name.")


class _PasswordUser(serializers.Serializer):
    name = StringField()
    password = StringField(trim_whitespace=False)
    domain = _Domain()


class _Password(serializers.Serializer):
    user = _PasswordUser()


class _Identity(serializers.Serializer):
    methods = serializers.ListField(child=serializers.ChoiceField(choices=["password"]), min_length=1)
    password = _Password()


class _Auth(serializers.Serializer):
    identity = _Identity()


class TokenRequestSerializer(serializers.Serializer):
    auth = _Auth()


_NAMED = {"id": serializers.CharField(), "name": serializers.CharField()}

TOKEN_ANSWER = inline_serializer(
    "TokenAnswer",
    {
        "token": inline_serializer(
            "Token",
            {
                "expires_at": serializers.DateTimeField(),
                "user": inline_serializer("TokenUser", {**_NAMED, "domain": inline_serializer("TokenDomain", _NAMED)}),
                "project": inline_serializer("TokenProject", _NAMED),
            },
        )
    },
)


class TokenView(AuditedMixin, APIView):
    """Log in with name, password and domain; the token is in the X-Subject-Token header."""

    authentication_classes = []
    permission_classes = [AllowAny]
    audit_resource = "token"

    @extend_schema(
        summary="Obtain a token with a password",
        auth=[],
        request=TokenRequestSerializer,
        responses={201: OpenApiResponse(TOKEN_ANSWER, description="The token is in X-Subject-Token."), **errors(400)},
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = serializer.validated_data["auth"]["identity"]["password"]["user"]
        self.audit_object = f"{given['domain']['name']}/{given['name']}"
        user = authenticate(request._request, username=given["name"], password=given["password"])
        if user is None or user.tenant is None or user.tenant.name != given["domain"]["name"]:
            raise AuthenticationFailed("Authentication failed: wrong user name, password or domain.")
        request.user = user
        token, raw = services.token_issue(user=user)
        tenant = user.tenant
        body = {
            "token": {
                "expires_at": serializers.DateTimeField().to_representation(token.expires_at),
                "user": {
                    "id": str(user.pk),
                    "name": user.username,
                    "domain": {"id": tenant.domain_id, "name": tenant.name},
                },
                "project": {"id": tenant.project_id, "name": tenant.name},
            }
        }
        return Response(body, status=status.HTTP_201_CREATED, headers={"X-Subject-Token": raw})
