"""The API's door to the audit trail (swr/audit.py): who acts, and every refused change on record."""

from rest_framework.permissions import SAFE_METHODS

from swr import audit
from swr.audit import Actor

# The audit's verb for a view action (DRF's names).
VERBS = {"create": "create", "partial_update": "update", "update": "update", "destroy": "delete"}


class AuditedMixin:
    """For a view whose changes are audited: the :attr:`actor` its services take, and a record of each
    change the view refuses or fails.

    A change made is recorded by its service, in the change's transaction (swr/audit.py). A change
    refused or failed (4xx, 5xx) is recorded here, from the answer: action ``<audit_resource>.<verb>``
    (the verb of the view's action, VERBS, or ``audit_verb``), object ``self.audit_object`` if the view
    set it, else the URL's path parameters ('$' read as '/'), and the answer's status and error.
    """

    audit_resource: str = ""
    audit_verb: str = ""
    # Whether a request refused as unauthenticated (401) is recorded: only where the attempt itself is the
    # news (password logins, whose failures per user name the lockout bounds).
    audit_unauthenticated: bool = False

    @property
    def actor(self) -> Actor:
        """The caller, as the services record it."""
        return Actor.of_request(self.request, audit.Source.API)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        status_code = response.status_code
        refused = status_code >= 400 and status_code != 405 and request.method not in SAFE_METHODS
        if status_code == 401 and not self.audit_unauthenticated:
            # Nobody was identified: the access log has the line; a record per anonymous request would let
            # anyone grow the audit table without end.
            refused = False
        if refused and self.audit_resource:
            data = getattr(response, "data", None)
            detail = f"{data.get('error_code')}: {data.get('error_msg')}" if isinstance(data, dict) and data else ""
            action = getattr(self, "action", None) or request.method.lower()
            obj = getattr(self, "audit_object", None) or "/".join(
                str(value).replace("$", "/") for value in self.kwargs.values()
            )
            audit.record(
                self.actor,
                f"{self.audit_resource}.{self.audit_verb or VERBS.get(action, action)}",
                obj,
                success=False,
                status_code=status_code,
                detail=detail,
            )
        return response
