"""Permission grants: ``/access`` of organizations and repositories (spec section 6), and tenant quotas."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from swr import policy, services
from swr.api.audit import AuditedMixin
from swr.api.schema import REPOSITORY_PATH_PARAMETER, errors
from swr.api.serializers import (
    AccessSerializer,
    GrantListSerializer,
    QuotasSerializer,
    UserAuthSerializer,
    UserIdListSerializer,
)
from swr.api.views import CREATED, DELETED, LookupMixin, created
from swr.errors import OtherTenant, SwrError
from swr.models import Namespace, NamespacePermission, Repository, RepositoryPermission, User


def _user_auth(user: User, level: int) -> dict:
    return {"user_id": str(user.pk), "user_name": user.username, "auth": level}


class AccessViewSetBase(AuditedMixin, LookupMixin, viewsets.GenericViewSet):
    """The four ``/access`` operations; subclasses say what the target is and how levels are read."""

    serializer_class = AccessSerializer
    grant_model: type
    grant_field: str

    def get_target(self, action: str) -> Namespace | Repository:
        raise NotImplementedError

    def tenant_of(self, target) -> int:
        raise NotImplementedError

    def own_level(self, target) -> int:
        raise NotImplementedError

    def _users(self, ids: list[str], target) -> dict[str, User]:
        """The users named by id, all of the target's tenant; 400 for any other."""
        numeric = [i for i in ids if i.isdigit()]
        found = {str(u.pk): u for u in User.objects.filter(pk__in=numeric, tenant_id=self.tenant_of(target))}
        missing = [i for i in ids if i not in found]
        if missing:
            raise SwrError(
                f"No user with id {missing[0]!r} in this tenant: grants can only name users of the same tenant.",
                details=[{"field": "user_id", "error_msg": f"unknown user id {i!r}"} for i in missing],
            )
        return found

    def _levels(self, request, target) -> dict[User, int]:
        serializer = GrantListSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        users = self._users([entry["user_id"] for entry in serializer.validated_data], target)
        return {users[entry["user_id"]]: entry["auth"] for entry in serializer.validated_data}

    def list(self, request, **kwargs):
        target = self.get_target("grants.read")
        grants = self.grant_model.objects.filter(**{self.grant_field: target}).select_related("user").order_by("id")
        creator = getattr(target, "creator", None)
        return Response(
            {
                "id": target.pk,
                "name": target.name,
                "creator_name": creator.username if creator else "",
                "self_auth": _user_auth(request.user, self.own_level(target)),
                "others_auths": [_user_auth(g.user, g.level) for g in grants if g.user_id != request.user.pk],
            }
        )

    def create(self, request, **kwargs):
        target = self.get_target("grants.change")
        services.grants_create(obj=target, levels=self._levels(request, target), actor=self.actor)
        return created()

    def partial_update(self, request, **kwargs):
        target = self.get_target("grants.change")
        services.grants_update(obj=target, levels=self._levels(request, target), actor=self.actor)
        return created()

    def destroy(self, request, **kwargs):
        target = self.get_target("grants.change")
        serializer = UserIdListSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        users = self._users(serializer.validated_data, target)
        services.grants_delete(obj=target, users=list(users.values()), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


_LEVELS = "`auth` is the level: 1 read, 3 edit, 7 manage (spec section 6)"


def access_schema(target: str, *parameters):
    """OpenAPI description of the four /access operations of ``target`` (an organization or a repository)."""
    grants = f"Who holds which permission on this {target}"
    body = (
        'The body is a JSON array of `{"user_id", "user_name", "auth"}` entries, for example '
        '`[{"user_id": "12", "user_name": "bob", "auth": 3}]`; ' + _LEVELS + ". Users must be of the "
        f"{target}'s tenant; nobody grants a level above their own. Either every entry applies or none."
    )
    return extend_schema_view(
        list=extend_schema(
            summary="Show who holds which permission",
            description=f"{grants}: the caller's own level (`self_auth`) and the others' (`others_auths`); "
            + _LEVELS
            + ".",
            parameters=list(parameters),
            responses={200: AccessSerializer, **errors(403, 404)},
        ),
        create=extend_schema(
            summary="Grant permissions (all entries or none; 409 if one exists)",
            description=f"Grant permissions on this {target}. {body} 409 when a user already holds one here.",
            parameters=list(parameters),
            request={"application/json": UserAuthSerializer(many=True)},
            responses={201: CREATED, **errors(400, 403, 404, 409, 413, 415)},
        ),
        partial_update=extend_schema(
            summary="Change permissions (all entries or none; 404 if one is missing)",
            description=f"Change permissions on this {target}. {body} 404 when a user holds none here.",
            parameters=list(parameters),
            request={"application/json": UserAuthSerializer(many=True)},
            responses={201: CREATED, **errors(400, 403, 404, 413, 415)},
        ),
        destroy=extend_schema(
            summary="Remove permissions of these user ids (all or none; 404 if one is missing)",
            description=f"Remove permissions on this {target}. The body is a JSON array of user ids, for example "
            '`["12", "15"]` (`Content-Type: application/json`). Either all are removed or none: 404 when one '
            "holds no permission here.",
            parameters=list(parameters),
            request={"application/json": {"type": "array", "items": {"type": "string"}}},
            responses={204: DELETED, **errors(400, 403, 404, 413, 415)},
        ),
    )


@access_schema("organization")
class NamespaceAccessViewSet(AccessViewSetBase):
    """``/v2/manage/namespaces/{namespace}/access``: the permissions users hold on an organization."""

    audit_resource = "namespace.grants"
    grant_model = NamespacePermission
    grant_field = "namespace"

    def get_target(self, action):
        return self.get_namespace(f"namespace.{action}")

    def tenant_of(self, target):
        return target.tenant_id

    def own_level(self, target):
        return policy.effective_level(self.request.user, target)


@access_schema("repository", REPOSITORY_PATH_PARAMETER)
class RepositoryAccessViewSet(AccessViewSetBase):
    """``/v2/manage/namespaces/{namespace}/repos/{repository}/access``: the permissions users hold on a
    repository."""

    audit_resource = "repository.grants"
    grant_model = RepositoryPermission
    grant_field = "repository"

    def get_target(self, action):
        return self.get_repository(f"repository.{action}")

    def tenant_of(self, target):
        return target.namespace.tenant_id

    def own_level(self, target):
        return policy.effective_level(self.request.user, target.namespace, target)


class QuotaView(APIView):
    """``GET /v2/manage/projects/{project_id}/quotas``: the caller's tenant's limits and usage."""

    @extend_schema(summary="Quotas of your tenant", responses={200: QuotasSerializer, **errors(403)})
    def get(self, request, project_id):
        tenant = request.user.tenant
        if tenant is None or tenant.project_id != project_id:
            raise OtherTenant(
                f"Project {project_id!r} is not the project of your tenant: ask for your own project id's quotas "
                "(POST /v3/auth/tokens and the credential commands print it)."
            )
        used = services.quota_usage(tenant)
        return Response(
            {
                "quotas": [
                    {"quota_key": key, "quota_limit": tenant.quota(key), "used": used[key], "unit": ""}
                    for key in ("namespace", "repository")
                ]
            }
        )
