"""For scale only (make bench): a bare Django view doing the work of a repository create in three statements.

No DRF, no serializer, no model instances, no policy module: the project's
settings and middleware (so the same access log line per request), then the
token lookup, the organization lookup with the caller's grant level, and the
quota + INSERT + audit statement that the service runs, as tuples through a
cursor. It checks only what it must to stay correct for the benchmark's
requests (a known, unexpired token; an organization where the caller may
write); it is not an endpoint of the service. Served by the same gunicorn
configuration: ``gunicorn -c gunicorn.conf.py bench.bare:application``.
"""

import hashlib
import json
import os
import uuid

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from swr import health  # noqa: E402

TOKEN = (
    "SELECT u.id, u.username, u.tenant_id FROM swr_apitoken k JOIN swr_user u ON u.id = k.user_id "
    "LEFT JOIN swr_tenant t ON t.id = u.tenant_id "
    "WHERE k.key_hash = %s AND k.revoked_at IS NULL AND k.expires_at > now() AND u.is_active"
)
NAMESPACE = (
    "SELECT n.id, n.tenant_id, (SELECT g.level FROM swr_namespacepermission g "
    "WHERE g.namespace_id = n.id AND g.user_id = %s) FROM swr_namespace n WHERE n.name = %s"
)
CREATE = (
    "WITH place AS (UPDATE swr_tenant SET repository_count = repository_count + 1 "
    "WHERE id = %s AND repository_count < COALESCE(repository_quota, %s) RETURNING id), "
    "created AS (INSERT INTO swr_repository (namespace_id, name, category, description, is_public, creator_id, "
    "num_images, num_download, size, created_at, updated_at) "
    "SELECT %s, %s, 'other', '', %s, %s, 0, 0, 0, %s, %s FROM place RETURNING id), "
    "recorded AS (INSERT INTO swr_auditrecord (created_at, request_id, source, user_id, username, tenant_id, "
    "action, object, outcome, status_code, detail) "
    "SELECT %s, %s, 'api', %s, %s, %s, 'repository.create', %s, 'success', 201, '' FROM created RETURNING id) "
    "SELECT created.id, (SELECT id FROM recorded) FROM created"
)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error_code": "SVCSTG.SWR.4000001", "error_msg": message}, status=status)


@csrf_exempt
def create(request, namespace):
    secret = request.headers.get("X-Auth-Token", "")
    body = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute(TOKEN, [hashlib.sha256(secret.encode()).hexdigest()])
        caller = cursor.fetchone()
        if caller is None:
            return _error(401, "Authentication required.")
        user_id, username, tenant_id = caller
        cursor.execute(NAMESPACE, [user_id, namespace])
        found = cursor.fetchone()
        if found is None or (found[1] != tenant_id and not found[2]):
            return _error(404, "Organization not found.")
        now = timezone.now()
        name = body["repository"]
        cursor.execute(
            CREATE,
            [
                *(found[1], settings.SWR_DEFAULT_QUOTAS["repository"]),
                *(found[0], name, bool(body["is_public"]), user_id, now, now),
                *(now, getattr(request, "request_id", uuid.uuid4().hex), user_id, username, tenant_id),
                f"{namespace}/{name}",
            ],
        )
        if cursor.fetchone() is None:
            return _error(403, "Quota exceeded.")
    return JsonResponse({}, status=201)


urlpatterns = [path("v2/manage/namespaces/<str:namespace>/repos", create), path("healthz", health.healthz)]
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()
