"""Health checks for load balancers and orchestrators: no authentication, no audit, cheap."""

from django.db import DatabaseError, connection
from django.http import JsonResponse

from swr.api.errors import ServiceUnavailable, SwrError, error_response


def _only_get(view):
    def wrapper(request):
        if request.method not in ("GET", "HEAD"):
            return error_response(
                SwrError(
                    f"Method {request.method} not allowed: use GET.", status_code=405, error_code="SVCSTG.SWR.4050000"
                )
            )
        return view(request)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@_only_get
def healthz(request):
    """The process is up and answering."""
    return JsonResponse({"status": "ok"})


@_only_get
def readyz(request):
    """The process can serve requests: its database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return error_response(ServiceUnavailable())
    return JsonResponse({"status": "ok", "database": "ok"})
