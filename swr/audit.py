"""The audit trail: who changed what, through which door, and how it ended.

Every write service (swr/services.py) takes an :class:`Actor` and records its
change with :func:`record` inside the transaction of the change: the record
exists exactly when the change does, whether it came through the API, the
admin site or a management command. Refusals and failures, which change
nothing, are recorded once at each door's edge: the API's by
``swr.api.audit.AuditedMixin`` from the error answer, the admin's by its views.
"""

from dataclasses import dataclass

from swr.models import AuditRecord, User

Source = AuditRecord.Source


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and the request it comes with.

    ``user``: the account acting (None for an operator's management command).
    ``source``: the door (:class:`AuditRecord.Source`). ``request_id``: the request's
    X-Request-Id, which the access log line carries too (spec section 1).
    Only the API's callers are held to their grants (spec section 6); staff in the
    admin site are held to their Django permissions by the admin instead.
    """

    user: User | None
    source: str
    request_id: str = ""

    @property
    def held_to_grants(self) -> bool:
        return self.source == Source.API

    @classmethod
    def of_request(cls, request, source: str) -> "Actor":
        """The actor of a Django request through ``source``: its user, and the id swr.middleware gave it."""
        user = getattr(request, "user", None)
        return cls(
            user=user if user is not None and user.is_authenticated else None,
            source=source,
            request_id=getattr(request, "request_id", ""),
        )

    @classmethod
    def command(cls, user: User | None = None) -> "Actor":
        """An operator running a management command (on behalf of ``user``, where one is named)."""
        return cls(user=user, source=Source.COMMAND)


def _printable(text: str, limit: int) -> str:
    """Text as it can be stored and read: unprintable characters (NUL among them) escaped, cut at ``limit``."""
    if text.isprintable():
        return text[:limit]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)[:limit]


def record(
    actor: Actor,
    action: str,
    obj: str,
    *,
    success: bool = True,
    status_code: int | None = None,
    detail: str = "",
) -> AuditRecord:
    """Store the record of one change (``success``) or one refused or failed attempt at a change.

    ``action``: ``<resource>.<verb>``, e.g. ``repository.create``. ``obj``: what it was done to, e.g.
    ``group/web``. ``status_code`` and ``detail``: for a refusal, the HTTP status and "code: message" of
    the answer. Text that cannot be stored (NUL) is escaped, and ``obj`` and ``detail`` are cut at the
    columns' widths.
    """
    user = actor.user
    return AuditRecord.objects.create(
        source=actor.source,
        request_id=actor.request_id,
        action=action,
        object=_printable(obj, AuditRecord._meta.get_field("object").max_length),
        outcome=AuditRecord.Outcome.SUCCESS if success else AuditRecord.Outcome.FAILURE,
        user=user,
        username=user.username if user else "",
        tenant_id=user.tenant_id if user else None,
        status_code=None if status_code is None else int(status_code),
        detail=_printable(detail, AuditRecord._meta.get_field("detail").max_length),
    )
