"""Every change made through the API is on record, whatever its outcome."""

from rest_framework.permissions import SAFE_METHODS

from swr import services


class AuditedMixin:
    """Record an audit entry for each non-read request a view answers.

    ``audit_resource`` names what the view changes ("namespace", "repository",
    ...); the entry's action is ``<resource>.<view action>``. A view may set
    ``self.audit_object`` once it knows what it acts on; otherwise the URL's
    path parameters name it.
    """

    audit_resource: str = ""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in SAFE_METHODS and self.audit_resource and response.status_code != 405:
            data = getattr(response, "data", None)
            detail = f"{data.get('error_code')}: {data.get('error_msg')}" if isinstance(data, dict) and data else ""
            obj = getattr(self, "audit_object", None) or "/".join(
                str(value).replace("$", "/") for value in self.kwargs.values()
            )
            services.audit_record(
                source="api",
                action=f"{self.audit_resource}.{getattr(self, 'action', None) or request.method.lower()}",
                obj=obj,
                success=response.status_code < 400,
                user=getattr(request, "user", None),
                status_code=response.status_code,
                detail=detail,
                request_id=getattr(request._request, "request_id", ""),
            )
        return response
