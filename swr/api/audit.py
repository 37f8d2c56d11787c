"""Every change made through the API is on record, whatever its outcome."""

from rest_framework.permissions import SAFE_METHODS

from swr import services
from swr.models import AuditRecord


class AuditedMixin:
    """Record an audit entry for each non-read request a view answers.

    ``audit_resource`` names what the view changes ("namespace", "repository",
    ...); the entry's action is ``<resource>.<view action>``. A view may set
    ``self.audit_object`` once it knows what it acts on; otherwise the URL's
    path parameters name it. A view whose service stores the record together
    with the change (``audit=self.audit_entry(...)``) sets ``self.audit_stored``.
    """

    audit_resource: str = ""
    audit_stored: bool = False
    # Whether a request refused as unauthenticated (401) is recorded: only where the attempt itself is the
    # news (password logins, whose failures per user name the lockout bounds).
    audit_unauthenticated: bool = False

    def audit_entry(self, status_code: int) -> AuditRecord:
        """The record of this request, answered with ``status_code``; not stored yet."""
        return services.audit_entry(**self._audit_fields(status_code))

    def _audit_fields(self, status_code: int, detail: str = "") -> dict:
        request = self.request
        obj = getattr(self, "audit_object", None) or "/".join(
            str(value).replace("$", "/") for value in self.kwargs.values()
        )
        return dict(
            source="api",
            action=f"{self.audit_resource}.{getattr(self, 'action', None) or request.method.lower()}",
            obj=obj,
            success=status_code < 400,
            user=getattr(request, "user", None),
            status_code=status_code,
            detail=detail,
            request_id=getattr(request._request, "request_id", ""),
        )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        audited = request.method not in SAFE_METHODS and self.audit_resource and response.status_code != 405
        if response.status_code == 401 and not self.audit_unauthenticated:
            # Nobody was identified: the access log has the line; a record per anonymous request would let
            # anyone grow the audit table without end.
            audited = False
        if audited and not self.audit_stored:
            data = getattr(response, "data", None)
            detail = f"{data.get('error_code')}: {data.get('error_msg')}" if isinstance(data, dict) and data else ""
            services.audit_record(**self._audit_fields(response.status_code, detail))
        return response
