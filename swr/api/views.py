"""Thin views of the management API: authenticate, check the policy, validate, call a service."""

from django.db.models import Count, Prefetch, Sum
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from swr import policy, selectors, services
from swr.api.audit import AuditedMixin
from swr.api.filters import NamespaceFilterSet, RepositoryFilterSet, SwrFilterBackend, query_params
from swr.api.pagination import LimitOffsetPagination
from swr.api.schema import FILTER_PARAMETER, REPOSITORY_PATH_PARAMETER, errors
from swr.api.serializers import (
    EmptySerializer,
    NamespaceCreateSerializer,
    NamespaceListSerializer,
    NamespaceSerializer,
    RepositoryCreateSerializer,
    RepositoryDetailSerializer,
    RepositoryListItemSerializer,
    RepositoryUpdateSerializer,
)
from swr.errors import NamespaceNotFound, PermissionTooLow
from swr.models import Namespace, Repository, Tag

# When version 2 of the API last changed, as SWR reports it.
API_UPDATED = "2026-11-27T00:00:00Z"

CREATED = OpenApiResponse(EmptySerializer, description="Done: the body is {}.")
DELETED = OpenApiResponse(description="Deleted; no body.")


def created() -> HttpResponse:
    """201 with the body ``{}``, SWR's answer to a create or an update.

    Written out as the JSON renderer would write it: the API answers JSON whatever
    the Accept header says, so there is nothing to negotiate or render.
    """
    return HttpResponse(b"{}", status=status.HTTP_201_CREATED, content_type="application/json")


class LookupMixin:
    """Find the organization and repository named in the URL, and check the caller's permission on them."""

    def get_namespace(self, action: str | None, *, related: bool = True) -> Namespace:
        """The namespace of the URL; with ``action``, only if the caller may do it there.

        Its tenant and creator are loaded with it, unless ``related`` is False (an answer that shows neither).
        """
        name = self.kwargs["namespace"]
        namespace = selectors.namespace(name, self.request.user, related=related)
        if namespace is None:
            raise NamespaceNotFound(f"Organization {name!r} not found.")
        if action is not None:
            policy.require(self.request.user, action, namespace)
        return namespace

    def get_repository(self, action: str) -> Repository:
        """The repository of the URL ('$' standing for '/'), if the caller may do ``action`` on it.

        A missing repository is refused like an existing private one to whoever may not read the
        organization (:func:`swr.policy.require_repository`).
        """
        namespace = self.get_namespace(None)
        name = self.kwargs["repository"].replace("$", "/")
        repository = selectors.repository(namespace, name, self.request.user)
        return policy.require_repository(self.request.user, action, namespace, name, repository)


class NamespaceViewSet(AuditedMixin, LookupMixin, viewsets.GenericViewSet):
    """Organizations (namespaces)."""

    audit_resource = "namespace"
    serializer_class = NamespaceSerializer
    filter_backends = [SwrFilterBackend]
    filterset_class = NamespaceFilterSet
    lookup_url_kwarg = "namespace"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator has no user
            return Namespace.objects.none()
        visible = query_params(self.request).get("mode") == "visible"
        namespaces = policy.visible_namespaces(self.request.user, with_repository_grants=visible)
        return namespaces.select_related("creator").order_by("name")

    @extend_schema(
        summary="Create an organization",
        request=NamespaceCreateSerializer,
        responses={201: CREATED, **errors(400, 403, 409, 413, 415)},
    )
    def create(self, request):
        serializer = NamespaceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.audit_object = serializer.validated_data["name"]
        if request.user.tenant is None:
            raise PermissionTooLow("Only users of a tenant can create organizations.")
        with serializer.model_rules():
            services.namespace_create(
                name=serializer.validated_data["name"],
                tenant=request.user.tenant,
                creator=request.user,
                actor=self.actor,
            )
        return created()

    @extend_schema(
        summary="List the organizations you hold a permission on",
        parameters=[FILTER_PARAMETER],
        responses={200: NamespaceListSerializer, **errors(400)},
    )
    def list(self, request):
        namespaces = self.filter_queryset(self.get_queryset())
        return Response({"namespaces": self.get_serializer(namespaces, many=True).data})

    @extend_schema(summary="Show an organization", responses={200: NamespaceSerializer, **errors(403, 404)})
    def retrieve(self, request, namespace):
        return Response(self.get_serializer(self.get_namespace("namespace.read")).data)

    @extend_schema(summary="Delete an empty organization", responses={204: DELETED, **errors(403, 404, 406)})
    def destroy(self, request, namespace):
        services.namespace_delete(namespace=self.get_namespace("namespace.delete"), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RepositoryViewSet(AuditedMixin, LookupMixin, viewsets.GenericViewSet):
    """Image repositories of one organization."""

    audit_resource = "repository"
    serializer_class = RepositoryDetailSerializer

    @extend_schema(
        summary="Create an image repository",
        request=RepositoryCreateSerializer,
        responses={201: CREATED, **errors(400, 403, 404, 409, 413, 415)},
    )
    def create(self, request, namespace):
        namespace = self.get_namespace("repository.create", related=False)
        serializer = RepositoryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.audit_object = f"{namespace.name}/{serializer.validated_data['name']}"
        with serializer.model_rules():
            services.repository_create(
                namespace=namespace, creator=request.user, actor=self.actor, **serializer.validated_data
            )
        return created()

    @extend_schema(
        summary="Show an image repository",
        parameters=[REPOSITORY_PATH_PARAMETER],
        responses={200: RepositoryDetailSerializer, **errors(403, 404)},
    )
    def retrieve(self, request, namespace, repository):
        return Response(self.get_serializer(self.get_repository("repository.read")).data)

    @extend_schema(
        summary="Update an image repository (visibility, category, description)",
        parameters=[REPOSITORY_PATH_PARAMETER],
        request=RepositoryUpdateSerializer,
        responses={201: CREATED, **errors(400, 403, 404, 413, 415)},
    )
    def partial_update(self, request, namespace, repository):
        repository = self.get_repository("repository.update")
        serializer = RepositoryUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with serializer.model_rules():
            services.repository_update(repository=repository, actor=self.actor, **serializer.validated_data)
        return created()

    @extend_schema(
        summary="Delete an image repository",
        parameters=[REPOSITORY_PATH_PARAMETER],
        responses={204: DELETED, **errors(403, 404)},
    )
    def destroy(self, request, namespace, repository):
        services.repository_delete(repository=self.get_repository("repository.delete"), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RepositoryListViewSet(viewsets.GenericViewSet):
    """``GET /v2/manage/repos``: every repository the caller may read, filtered, ordered and paged."""

    serializer_class = RepositoryListItemSerializer
    filter_backends = [SwrFilterBackend]
    filterset_class = RepositoryFilterSet
    pagination_class = LimitOffsetPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator has no user
            return Repository.objects.none()
        return (
            policy.readable_repositories(self.request.user)
            .select_related("namespace__tenant")
            .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("repository_id", "name")))
        )

    @extend_schema(
        summary="List image repositories",
        parameters=[FILTER_PARAMETER],
        responses={200: RepositoryListItemSerializer(many=True), **errors(400)},
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        serializer = self.get_serializer(page, many=True, context={**self.get_serializer_context(), "total": self.paginator.total})
        return self.get_paginated_response(serializer.data)


class OverviewView(APIView):
    """``GET /v2/manage/overview``: what the caller's tenant holds."""

    @extend_schema(
        summary="Overview of your tenant",
        responses={
            200: inline_serializer(
                "Overview",
                {
                    "domain_id": serializers.CharField(),
                    "domain_name": serializers.CharField(),
                    "namspace_num": serializers.IntegerField(help_text="Organizations (SWR's own spelling)."),
                    "repo_num": serializers.IntegerField(),
                    "image_num": serializers.IntegerField(),
                    "store_space": serializers.IntegerField(help_text="Bytes."),
                    "downflow_size": serializers.IntegerField(help_text="Bytes pulled."),
                },
            ),
            **errors(403),
        },
    )
    def get(self, request):
        tenant = request.user.tenant
        if tenant is None:
            raise PermissionTooLow("Only users of a tenant have an overview.")
        repositories = Repository.objects.filter(namespace__tenant=tenant).aggregate(
            count=Count("id"), images=Sum("num_images"), size=Sum("size")
        )
        return Response(
            {
                "domain_id": tenant.domain_id,
                "domain_name": tenant.name,
                "namspace_num": tenant.namespaces.count(),
                "repo_num": repositories["count"],
                "image_num": repositories["images"] or 0,
                "store_space": repositories["size"] or 0,
                "downflow_size": 0,
            }
        )


class VersionsView(APIView):
    """``GET /`` and ``GET /v2``: the API versions this server speaks. No authentication."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="API versions",
        auth=[],
        responses={
            200: inline_serializer(
                "Versions",
                {
                    "versions": inline_serializer(
                        "Version",
                        {
                            "id": serializers.CharField(),
                            "links": serializers.ListField(child=serializers.DictField()),
                            "status": serializers.CharField(),
                            "version": serializers.CharField(),
                            "min_version": serializers.CharField(),
                            "updated": serializers.CharField(),
                        },
                        many=True,
                    )
                },
            )
        },
    )
    def get(self, request):
        base = request.build_absolute_uri("/")
        return Response(
            {
                "versions": [
                    {
                        "id": "v2",
                        "links": [{"href": f"{base}v2", "rel": "self"}],
                        "status": "CURRENT",
                        "version": "",
                        "min_version": "",
                        "updated": API_UPDATED,
                    }
                ]
            }
        )
