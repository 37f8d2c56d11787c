"""Image tags (spec section 10) and the v3 repository list (section 13): thin views over the registry's rows.

Tags are the registry's own rows (swr/distribution/): a tag pushed with ``docker push`` and one made by the
copy call are the same row, and a delete through either API is seen by the other at once. Writes go through
:func:`swr.distribution.services.tag_copy` and ``tag_delete``; permissions are those of the registry's push
(copy: edit on the organization or manage on the repository) and delete (manage), and read (1) to list.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from swr import policy
from swr.api.audit import AuditedMixin
from swr.api.filters import RepositoryFilters, SwrFilterBackend, TagFilterSet, TagV3FilterSet, query_params
from swr.api.pagination import LimitOffsetPagination, RepositoryMarkerPagination, TagMarkerPagination
from swr.api.schema import FILTER_PARAMETER, REPOSITORY_PATH_PARAMETER, errors
from swr.api.serializers import TagCopySerializer, TagSerializer, TagV2Serializer
from swr.api.views import CREATED, DELETED, LookupMixin, created
from swr.distribution import selectors as registry_selectors
from swr.distribution import services as registry_services
from swr.errors import TagNotFound
from swr.models import Repository, Tag

TAG_PATH_PARAMETER = OpenApiParameter("tag", str, OpenApiParameter.PATH, description="Tag name.")


class TagMixin(AuditedMixin, LookupMixin):
    """The repository of the URL (``self.repository``, set by the action) and its tags."""

    audit_resource = "tag"
    serializer_class = TagSerializer
    filter_backends = [SwrFilterBackend]
    filterset_class = TagFilterSet
    with_manifest = True

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator has no user
            return Tag.objects.none()
        return registry_selectors.repository_tags(self.repository, with_manifest=self.with_manifest)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        return {**context, "repository": getattr(self, "repository", None), "with_manifest": self.with_manifest}

    def page(self, action: str):
        """The page of tags asked for, after checking that the caller may ``action`` on the repository."""
        self.repository = self.get_repository(action)
        return self.paginate_queryset(self.filter_queryset(self.get_queryset()))


class TagListV3ViewSet(TagMixin, viewsets.GenericViewSet):
    """``GET /v3/manage/namespaces/{namespace}/repos/{repository}/tags``: marker paging."""

    pagination_class = TagMarkerPagination
    filterset_class = TagV3FilterSet

    @extend_schema(
        summary="List the tags of an image repository (v3: marker paging)",
        parameters=[REPOSITORY_PATH_PARAMETER],
        responses={200: TagSerializer(many=True), **errors(400, 403, 404)},
    )
    def list(self, request, namespace, repository):
        self.with_manifest = query_params(request).get("with_manifest") == "true"
        page = self.page("repository.read")
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class TagViewSet(TagMixin, viewsets.GenericViewSet):
    """``.../namespaces/{namespace}/repos/{repository}/tags[/{tag}]`` under /v2/manage/."""

    pagination_class = LimitOffsetPagination

    @extend_schema(
        summary="List the tags of an image repository (v2: offset paging, Content-Range)",
        parameters=[REPOSITORY_PATH_PARAMETER, FILTER_PARAMETER],
        responses={200: TagV2Serializer(many=True), **errors(400, 403, 404)},
    )
    def list(self, request, namespace, repository):
        page = self.page("repository.read")
        return self.get_paginated_response(TagV2Serializer(page, many=True, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Show one tag of an image repository",
        parameters=[REPOSITORY_PATH_PARAMETER, TAG_PATH_PARAMETER],
        responses={200: TagSerializer, **errors(400, 403, 404)},
    )
    def retrieve(self, request, namespace, repository, tag):
        self.repository = self.get_repository("repository.read")
        registry_services.check_tag_name(tag)
        found = registry_selectors.repository_tags(self.repository).filter(name=tag).first()
        if found is None:
            raise TagNotFound(f"Repository {namespace}/{self.repository.name} has no tag {tag!r}.")
        return Response(self.get_serializer(found).data)

    @extend_schema(
        summary="Copy a tag: point destination_tag at the image of source_tag",
        parameters=[REPOSITORY_PATH_PARAMETER],
        request=TagCopySerializer,
        responses={201: CREATED, **errors(400, 403, 404, 409, 413, 415)},
    )
    def create(self, request, namespace, repository):
        repository = self.get_repository("repository.update")
        serializer = TagCopySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.audit_object = f"{namespace}/{repository.name}:{serializer.validated_data['destination_tag']}"
        registry_services.tag_copy(repository=repository, actor=self.actor, **serializer.validated_data)
        return created()

    @extend_schema(
        summary="Delete a tag (its image stays while other tags or digests refer to it)",
        parameters=[REPOSITORY_PATH_PARAMETER, TAG_PATH_PARAMETER],
        responses={204: DELETED, **errors(400, 403, 404)},
    )
    def destroy(self, request, namespace, repository, tag):
        repository = self.get_repository("repository.delete")
        registry_services.tag_delete(repository=repository, name=tag, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RepositoryV3Serializer(serializers.ModelSerializer):
    """One row of ``GET /v3/manage/repos`` (spec section 13)."""

    domain_name = serializers.CharField(source="namespace.tenant.name", help_text="Tenant (domain) name.")
    namespace_name = serializers.CharField(source="namespace.name", help_text="Organization name.")
    status = serializers.SerializerMethodField(help_text="Whether the repository is in service: true.")

    class Meta:
        model = Repository
        fields = [
            "id", "name", "category", "description", "size", "is_public", "num_images", "num_download",
            "created_at", "updated_at", "domain_name", "namespace_name", "status",
        ]  # fmt: skip

    def get_status(self, repository) -> bool:
        return True


class RepositoryListV3ViewSet(viewsets.GenericViewSet):
    """``GET /v3/manage/repos``: the repositories of the v2 list (the same filters, and the same repositories
    visible to the caller), paged by id markers."""

    serializer_class = RepositoryV3Serializer
    filter_backends = [SwrFilterBackend]
    filterset_class = RepositoryFilters
    pagination_class = RepositoryMarkerPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator has no user
            return Repository.objects.none()
        return policy.readable_repositories(self.request.user).select_related("namespace__tenant")

    @extend_schema(
        summary="List image repositories (v3: marker paging)",
        responses={200: RepositoryV3Serializer(many=True), **errors(400)},
    )
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
