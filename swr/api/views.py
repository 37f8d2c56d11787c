"""Thin views of the management API: authenticate, check the policy, validate, call a service."""

from rest_framework import status, viewsets
from rest_framework.response import Response

from swr import names, policy, services
from swr.api.errors import NamespaceNotFound, PermissionTooLow
from swr.api.serializers import NamespaceCreateSerializer, RepositoryCreateSerializer
from swr.models import Namespace


class NamespaceViewSet(viewsets.GenericViewSet):
    """Organizations (namespaces)."""

    serializer_class = NamespaceCreateSerializer

    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if request.user.tenant is None:
            raise PermissionTooLow("Only users of a tenant can create organizations.")
        services.namespace_create(
            name=serializer.validated_data["name"], tenant=request.user.tenant, creator=request.user
        )
        return Response({}, status=status.HTTP_201_CREATED)


class RepositoryViewSet(viewsets.GenericViewSet):
    """Image repositories of one organization."""

    serializer_class = RepositoryCreateSerializer

    def get_namespace(self, action: str) -> Namespace:
        name = self.kwargs["namespace"]
        # A name that breaks the rule cannot exist; it is not worth a query (nor a NUL byte sent to the database).
        namespace = None
        if names.NAMESPACE.is_valid(name):
            namespace = policy.with_user_level(Namespace.objects.filter(name=name), self.request.user).first()
        if namespace is None:
            raise NamespaceNotFound(f"Organization {name!r} not found.")
        policy.require(self.request.user, action, namespace)
        return namespace

    def create(self, request, namespace):
        namespace = self.get_namespace("repository.create")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.repository_create(namespace=namespace, creator=request.user, **serializer.validated_data)
        return Response({}, status=status.HTTP_201_CREATED)
