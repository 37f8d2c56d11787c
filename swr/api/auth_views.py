"""``POST /v3/auth/tokens``: password login in the IAM style, answering a token in ``X-Subject-Token``.

Password logins are throttled per user name (spec section 1) by django-axes (registry/settings.py): once
locked, a login answers 429 with Retry-After: here SVCSTG.SWR.4290001, on the admin's login form an HTML page.
"""

import math

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from swr import services
from swr.api.audit import AuditedMixin
from swr.api.schema import errors
from swr.api.serializers import StringField
from swr.errors import AuthenticationFailed, LoginThrottled, error_response
from swr.models import User


def login_throttled(username: str) -> LoginThrottled:
    """The 429 for a locked user name, with the seconds until its lockout ends (the window after the last
    counted failure)."""
    window = settings.AXES_COOLOFF_TIME
    last = AccessAttempt.objects.filter(username=username).aggregate(last=Max("attempt_time"))["last"]
    remaining = (last + window - timezone.now()) if last else window
    wait = max(1, math.ceil(remaining.total_seconds()))
    minutes = int(window.total_seconds() // 60)
    return LoginThrottled(
        f"Too many failed logins for user name '{username}' ({settings.AXES_FAILURE_LIMIT} within {minutes} "
        f"minutes): logins are refused until {minutes} minutes after the last failure. Try again in {wait} "
        "seconds.",
        wait=wait,
    )


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the answer to any login of a locked user name (the admin's form included).

    429 with Retry-After (seconds) either way. The API gets the SWR error body (SVCSTG.SWR.4290001); the
    admin's login form, a person at a browser, gets an HTML page in the admin's login look that names the
    locked user name and the wait (template admin/login_locked.html).
    """
    if original_response is not None and original_response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        return original_response  # the API's own answer (TokenView), already this one
    username = (credentials or {}).get("username") or ""
    error = login_throttled(username)
    if request.path.startswith(reverse("admin:index")):
        context = {
            **admin.site.each_context(request),
            "title": "Login locked",
            "username": username,
            "message": error.message,
            "wait": error.wait,
            "wait_minutes": math.ceil(error.wait / 60),
        }
        response = render(request, "admin/login_locked.html", context, status=status.HTTP_429_TOO_MANY_REQUESTS)
    else:
        response = error_response(error)
    response["Retry-After"] = str(error.wait)
    return response


class _Domain(serializers.Serializer):
    name = StringField(help_text="Tenant (domain) name.")


class _PasswordUser(serializers.Serializer):
    name = StringField(max_length=User._meta.get_field("username").max_length)
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
    """Log in with name, password and domain; the token is in the X-Subject-Token header.

    401 for a wrong name, password or domain; 429 once the user name is locked out (too many failures).
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    audit_resource = "apitoken"
    audit_verb = "create"
    audit_unauthenticated = True

    @extend_schema(
        summary="Obtain a token with a password",
        auth=[],
        request=TokenRequestSerializer,
        responses={
            201: OpenApiResponse(TOKEN_ANSWER, description="The token is in X-Subject-Token."),
            **errors(400, 429),
        },
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = serializer.validated_data["auth"]["identity"]["password"]["user"]
        self.audit_object = f"{given['domain']['name']}/{given['name']}"
        user = authenticate(request._request, username=given["name"], password=given["password"])
        if user is not None and (user.tenant is None or user.tenant.name != given["domain"]["name"]):
            # The right password with the wrong domain is a failed login too: counted like any other, so
            # that the answer after it (401 or 429) tells nothing about the password.
            user_login_failed.send(sender=__name__, credentials={"username": given["name"]}, request=request._request)
            user = None
        if user is None and getattr(request._request, "axes_locked_out", False):
            raise login_throttled(given["name"])
        if user is None:
            raise AuthenticationFailed("Authentication failed: wrong user name, password or domain.")
        request.user = user
        token, raw = services.token_issue(user=user, actor=self.actor)
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
