"""Health checks for load balancers and orchestrators: no authentication, no audit, cheap."""

from django.db import DatabaseError, connection
from django.http import JsonResponse

from swr.api.errors import only_get
from swr.errors import ServiceUnavailable, error_response


@only_get
def healthz(request):
    """The process is up and answering."""
    return JsonResponse({"status": "ok"})


@only_get
def readyz(request):
    """The process can serve requests: its database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return error_response(ServiceUnavailable())
    return JsonResponse({"status": "ok", "database": "ok"})
