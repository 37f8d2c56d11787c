"""Docker login credentials (spec section 11) and shared repositories (spec section 12)."""

import base64
from datetime import timedelta

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from swr import policy, selectors, services
from swr.api import hosts
from swr.api.audit import AuditedMixin
from swr.api.filters import RepositoryFilterSet, SharedRepositoryFilterSet, SwrFilterBackend, query_params
from swr.api.pagination import LimitOffsetPagination, RepositoryMarkerPagination, _int_param
from swr.api.schema import FILTER_PARAMETER, REPOSITORY_PATH_PARAMETER, errors
from swr.api.serializers import RepositoryListItemSerializer
from swr.api.share_serializers import (
    DockerLoginSerializer,
    ShareChangeSerializer,
    ShareCreateSerializer,
    SharedRepositoryV3Serializer,
    ShareSerializer,
    ShareShowDocumentSerializer,
    ShareShowSerializer,
    utc_text,
)
from swr.api.views import CREATED, DELETED, LookupMixin, created
from swr.choices import TemporaryLoginKind
from swr.errors import ShareNotFound, SwrError
from swr.models import Repository, RepositoryShare, Tag, Tenant

# Section 11: how long a temporary login lives, in seconds.
DURATION_MIN, DURATION_MAX = 900, 86400
PROJECT_NAME_MAX_LENGTH = 64


def _project_name(request) -> str:
    """``projectname`` of the query (default: the caller's tenant's name): the user name's part before '@'."""
    raw = request.query_params.get("projectname")
    if raw is None or raw == "":
        tenant = request.user.tenant
        return tenant.name if tenant is not None else "swr"
    allowed = raw.isascii() and all(c.isalnum() or c in "._-" for c in raw)
    if not allowed or len(raw) > PROJECT_NAME_MAX_LENGTH or raw == TemporaryLoginKind.BEARER_TOKEN:
        message = (
            f"Invalid projectname {raw[:80]!r}: 1-{PROJECT_NAME_MAX_LENGTH} ASCII letters, digits, '.', '_' or '-' "
            "(a region or project name), and not 'bearertoken'."
        )
        raise SwrError(message, details=[{"field": "projectname", "error_msg": message}])
    return raw


class DockerLoginView(AuditedMixin, APIView):
    """``POST /v2/manage/utils/secret`` (a ``docker login`` secret) and ``.../authorizationtoken`` (spec section
    11): a temporary registry login of the caller, valid ``duration_seconds`` (900-86400, default 86400)."""

    kind: str = TemporaryLoginKind.SECRET
    expire_header = "X-Swr-Expireat"
    audit_resource = "temporarylogin"
    audit_verb = "create"

    def post(self, request):
        params = request.query_params
        bearer = self.kind == TemporaryLoginKind.BEARER_TOKEN
        prefix = TemporaryLoginKind.BEARER_TOKEN.value if bearer else _project_name(request)
        seconds = _int_param(params, "duration_seconds", DURATION_MAX, DURATION_MIN, DURATION_MAX)
        login, secret = services.temporary_login_issue(
            user=request.user, kind=self.kind, lifetime=timedelta(seconds=seconds), actor=self.actor
        )
        host = hosts.registry_host(request)
        username = f"{prefix}@{login.identifier}"
        auth = base64.b64encode(f"{username}:{secret}".encode()).decode()
        return Response(
            {"auths": {host: {"auth": auth}}},
            headers={
                "X-Swr-Dockerlogin": f"docker login -u {username} -p {secret} {host}",
                self.expire_header: utc_text(login.expires_at),
            },
        )


DURATION_PARAMETER = OpenApiParameter(
    "duration_seconds",
    int,
    OpenApiParameter.QUERY,
    required=False,
    description=f"How long the login lives, {DURATION_MIN} to {DURATION_MAX} seconds; default {DURATION_MAX}.",
)


def _login_schema(summary: str, user: str, expire_header: str, parameters: list):
    headers = [
        OpenApiParameter(
            "X-Swr-Dockerlogin",
            str,
            OpenApiParameter.HEADER,
            response=[200],
            description=f"docker login -u {user} -p <secret> <registry host>",
        ),
        OpenApiParameter(expire_header, str, OpenApiParameter.HEADER, response=[200], description="Expiry, UTC."),
    ]
    return extend_schema(
        summary=summary,
        request=None,
        parameters=[*parameters, *headers],
        responses={
            200: OpenApiResponse(
                DockerLoginSerializer,
                description=f"A temporary registry login: user {user}, stored as a hash only, revocable in the admin.",
            ),
            **errors(400),
        },
    )


@extend_schema_view(
    post=_login_schema(
        "Get a docker login command (temporary secret)",
        "<projectname>@<id>",
        "X-Swr-Expireat",
        [
            OpenApiParameter(
                "projectname",
                str,
                OpenApiParameter.QUERY,
                required=False,
                description="Region or project name before the '@' of the user name; default your tenant's name.",
            ),
            DURATION_PARAMETER,
        ],
    )
)
class SecretView(DockerLoginView):
    kind = TemporaryLoginKind.SECRET


@extend_schema_view(
    post=_login_schema(
        "Get a temporary registry authorization token",
        "bearertoken@<id>",
        "x-swr-expireat",
        [DURATION_PARAMETER],
    )
)
class AuthorizationTokenView(DockerLoginView):
    kind = TemporaryLoginKind.BEARER_TOKEN
    expire_header = "x-swr-expireat"


# Section 12.

ACCESS_DOMAIN_PARAMETER = OpenApiParameter(
    "access_domain", str, OpenApiParameter.PATH, description="Name of the tenant the repository is shared with."
)


@extend_schema_view(
    list=extend_schema(
        summary="List the tenants a repository is shared with",
        parameters=[REPOSITORY_PATH_PARAMETER],
        responses={200: ShareSerializer(many=True), **errors(403, 404)},
    ),
    create=extend_schema(
        summary="Share a private repository with another tenant (needs manage, 7)",
        parameters=[REPOSITORY_PATH_PARAMETER],
        request=ShareCreateSerializer,
        responses={201: CREATED, **errors(400, 403, 404, 409, 413, 415)},
    ),
    retrieve=extend_schema(
        summary="Whether a repository is shared with a tenant, and how",
        parameters=[REPOSITORY_PATH_PARAMETER, ACCESS_DOMAIN_PARAMETER],
        responses={200: ShareShowDocumentSerializer, **errors(403, 404)},
    ),
    partial_update=extend_schema(
        summary="Change a share (needs manage, 7)",
        parameters=[REPOSITORY_PATH_PARAMETER, ACCESS_DOMAIN_PARAMETER],
        request=ShareChangeSerializer,
        responses={201: CREATED, **errors(400, 403, 404, 413, 415)},
    ),
    destroy=extend_schema(
        summary="Stop sharing a repository with a tenant (needs manage, 7)",
        parameters=[REPOSITORY_PATH_PARAMETER, ACCESS_DOMAIN_PARAMETER],
        responses={204: DELETED, **errors(403, 404)},
    ),
)
class ShareViewSet(AuditedMixin, LookupMixin, viewsets.GenericViewSet):
    """``/v2/manage/namespaces/{namespace}/repositories/{repository}/access-domains[/{access_domain}]``."""

    audit_resource = "repository.share"
    serializer_class = ShareSerializer

    def _shares(self, repository):
        return RepositoryShare.objects.filter(repository=repository).select_related("access_domain", "creator")

    def _attach(self, share, repository):
        share.repository = repository
        return share

    def list(self, request, **kwargs):
        repository = self.get_repository("repository.shares.read")
        shares = [self._attach(s, repository) for s in self._shares(repository).order_by("access_domain__name")]
        return Response(self.get_serializer(shares, many=True).data)

    def create(self, request, **kwargs):
        repository = self.get_repository("repository.shares.change")
        serializer = ShareCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        name = data.pop("access_domain")
        self.audit_object = f"{repository.namespace.name}/{repository.name} -> {name[:100]}"
        tenant = selectors.tenant(name)
        if tenant is None:
            message = f"No tenant (domain) named {name[:100]!r}: access_domain names the tenant to share with."
            raise SwrError(message, details=[{"field": "access_domain", "error_msg": message}])
        with serializer.model_rules():
            services.share_create(
                repository=repository, access_domain=tenant, creator=request.user, actor=self.actor, **data
            )
        return created()

    def _tenant(self, repository) -> Tenant:
        name = self.kwargs["access_domain"]
        tenant = selectors.tenant(name)
        if tenant is None:
            raise ShareNotFound(f"Image repository {repository.name!r} is not shared with {name[:100]!r}.")
        return tenant

    def retrieve(self, request, **kwargs):
        repository = self.get_repository("repository.shares.read")
        tenant = selectors.tenant(kwargs["access_domain"])
        share = self._shares(repository).filter(access_domain=tenant).first() if tenant is not None else None
        if share is None:
            return Response({"exist": False})
        return Response(ShareShowSerializer(self._attach(share, repository)).data)

    def partial_update(self, request, **kwargs):
        repository = self.get_repository("repository.shares.change")
        serializer = ShareChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = self._tenant(repository)
        with serializer.model_rules():
            services.share_update(
                repository=repository, access_domain=tenant, actor=self.actor, **serializer.validated_data
            )
        return created()

    def destroy(self, request, **kwargs):
        repository = self.get_repository("repository.shares.change")
        services.share_delete(repository=repository, access_domain=self._tenant(repository), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _shared_by(request, param: str) -> str:
    value = query_params(request).get(param)
    if value not in policy.SHARED_BY:
        given = f"Invalid {param} {value[:40]!r}" if value is not None else f"Missing {param}"
        message = (
            f"{given}: self (repositories your tenant shares) or thirdparty (repositories shared with your tenant)."
        )
        raise SwrError(message, details=[{"field": param, "error_msg": message}])
    return value


CENTER_PARAMETER = OpenApiParameter(
    "center",
    str,
    OpenApiParameter.QUERY,
    required=True,
    enum=list(policy.SHARED_BY),
    description="self: repositories your tenant shares; thirdparty: repositories shared with your tenant.",
)


class SharedRepositoryListViewSet(viewsets.GenericViewSet):
    """``GET /v2/manage/shared-repositories?center=self|thirdparty``: section 5's list of shared repositories."""

    serializer_class = RepositoryListItemSerializer
    filter_backends = [SwrFilterBackend]
    filterset_class = RepositoryFilterSet
    pagination_class = LimitOffsetPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Repository.objects.none()
        return (
            policy.shared_repositories(self.request.user, _shared_by(self.request, "center"), expired=False)
            .select_related("namespace__tenant")
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("repository_id", "name")))
        )

    @extend_schema(
        summary="List repositories shared by your tenant or with it",
        parameters=[CENTER_PARAMETER, FILTER_PARAMETER],
        responses={200: RepositoryListItemSerializer(many=True), **errors(400)},
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        serializer = self.get_serializer(
            page, many=True, context={**self.get_serializer_context(), "total": self.paginator.total}
        )
        return self.get_paginated_response(serializer.data)


class SharedRepositoryV3ListViewSet(viewsets.GenericViewSet):
    """``GET /v3/manage/shared-repositories?shared_by=self|thirdparty``: marker-paged, by repository id."""

    serializer_class = SharedRepositoryV3Serializer
    filter_backends = [SwrFilterBackend]
    filterset_class = SharedRepositoryFilterSet
    pagination_class = RepositoryMarkerPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Repository.objects.none()
        shared_by = _shared_by(self.request, "shared_by")
        return policy.shared_repositories(self.request.user, shared_by).select_related("namespace__tenant")

    @extend_schema(
        summary="List repositories shared by your tenant or with it (marker paging)",
        parameters=[
            OpenApiParameter(
                "shared_by",
                str,
                OpenApiParameter.QUERY,
                required=True,
                enum=list(policy.SHARED_BY),
                description="self: repositories your tenant shares; thirdparty: repositories shared with your tenant.",
            )
        ],
        responses={200: SharedRepositoryV3Serializer(many=True), **errors(400)},
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
