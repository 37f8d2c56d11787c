"""Paging of the lists: limit and offset with the Content-Range header (v2), markers (keyset paging, v3)."""

import base64
import json

from django.core.exceptions import ValidationError
from django.db.models import Q
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from swr.api.filters import query_params
from swr.errors import SwrError

# Largest offset: SQL's OFFSET is a 64-bit integer.
OFFSET_MAX = 2**63 - 1


def is_ascii_number(raw: str) -> bool:
    """Whether ``raw`` is a whole number written in ASCII digits only (spec section 1).

    ``int()`` also reads '1_0', ' 10', '+10' and other scripts' digits such as '１０'.
    """
    return raw.isascii() and raw.isdigit()


def _int_param(params, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    digits = raw.lstrip("0") or "0"
    # Past 19 digits a number is beyond every bound here (and int() refuses over 4300 digits).
    value = int(digits) if is_ascii_number(raw) and len(digits) <= 19 else None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
        message = f"Invalid {name}: {raw!r} is not a whole number {bounds}."
        raise SwrError(message, details=[{"field": name, "error_msg": message}])
    return value


class LimitOffsetPagination(BasePagination):
    """A bare JSON array of one page, with ``Content-Range: <offset>-<count on this page>/<total>``."""

    default_limit = 100
    max_limit = 1000

    def paginate_queryset(self, queryset, request, view=None):
        params = query_params(request)
        self.limit = _int_param(params, "limit", self.default_limit, 1, self.max_limit)
        self.offset = _int_param(params, "offset", 0, 0, OFFSET_MAX)
        self.total = queryset.count()
        if self.offset >= self.total:
            return []
        # The ids of the page first: the ordering index covers the columns that decide who may read
        # a row, so this walks the index only, not the rows of a table that others fill. Then the
        # rows of those ids, in the same order.
        ids = list(queryset.values_list("pk", flat=True)[self.offset : self.offset + self.limit])
        return list(queryset.filter(pk__in=ids))

    def get_paginated_response(self, data):
        return Response(data, headers={"Content-Range": f"{self.offset}-{len(data)}/{self.total}"})

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Rows per page, 1 to {self.max_limit}; default {self.default_limit}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "description": "Rows to skip; default 0.",
                "schema": {"type": "integer", "minimum": 0, "maximum": OFFSET_MAX},
            },
        ]


# Marker (keyset) paging of the v3 lists (spec sections 10, 12, 13).

MARKER_MAX_LENGTH = 1024


def _bad_marker(raw: str, why: str) -> SwrError:
    message = f"Invalid marker {raw[:100]!r}: {why} Send the nextMarker of the previous page, or no marker."
    return SwrError(message, details=[{"field": "marker", "error_msg": message}])


def _field_of(model, path: str):
    """The model field at ``path`` ('name', 'namespace__name')."""
    field = None
    for part in path.split("__"):
        field = model._meta.get_field(part)
        model = field.related_model if field.is_relation else model
    return field


def _value_of(obj, path: str):
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj


def _comparable(value) -> bool:
    """Whether a decoded marker value can stand in a comparison with its column on both engines: not None (SQL has
    no ``> NULL``), no NUL in a text (PostgreSQL refuses it) and an integer within a bigint."""
    if value is None:
        return False
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    return True


class MarkerPagination(BasePagination):
    """Keyset paging: ``{<results_key>: [...], "nextMarker": ...}``; the marker is where the previous page ended.

    The page after a marker is ``WHERE (k1, ..., id) > (marker) ORDER BY k1, ..., id LIMIT n``: an index on the
    ordering columns reads only the rows of the page, so a page costs the same at any depth (unlike OFFSET).
    The ordering is the queryset's (or :attr:`ordering`), its columns all ascending or all descending, its last
    column unique (the primary key). ``nextMarker`` is left out on the last page; with :attr:`has_more_key`, a
    boolean says whether more follow.

    Query parameters: ``limit`` (1 to :attr:`max_limit`, default :attr:`default_limit`), ``marker``. A marker
    that this server did not write is 400 (SVCSTG.SWR.4000014), never 500.
    """

    results_key = "items"
    has_more_key: str | None = None
    ordering: tuple[str, ...] | None = None
    # Columns unique within the listed rows: an ordering that ends in one needs no id after it.
    unique_columns: tuple[str, ...] = ("id",)
    default_limit = 100
    max_limit = 1000

    # The marker: a string (base64url of a JSON list of the ordering columns' values of the last row).

    def encode_marker(self, values: list) -> str | int:
        text = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def decode_marker(self, raw: str, fields: list) -> list:
        if len(raw) > MARKER_MAX_LENGTH:
            raise _bad_marker(raw, "it is too long.")
        try:
            values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
        except (ValueError, UnicodeDecodeError):
            raise _bad_marker(raw, "it is not one this server wrote.") from None
        if not isinstance(values, list) or len(values) != len(fields):
            raise _bad_marker(raw, "it belongs to another ordering.")
        try:
            decoded = [field.to_python(value) for field, value in zip(fields, values, strict=True)]
        except (ValidationError, TypeError, ValueError):
            raise _bad_marker(raw, "it is not one this server wrote.") from None
        if not all(_comparable(value) for value in decoded):
            raise _bad_marker(raw, "it is not one this server wrote.")
        return decoded

    def get_ordering(self, queryset) -> list[str]:
        ordering = [c.replace("pk", "id") for c in (self.ordering or queryset.query.order_by or ["id"])]
        if ordering[-1].lstrip("-") not in self.unique_columns:
            ordering.append("-id" if ordering[-1].startswith("-") else "id")
        return ordering

    def after(self, queryset, ordering: list[str], values: list):
        """Rows after ``values`` in ``ordering``: ``k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND (k2 > v2 OR ...)))``.

        The leading ``k1 >= v1`` is the range an index scan starts from; the rest drops the rows already shown.
        """
        descending = ordering[0].startswith("-")
        if any(column.startswith("-") != descending for column in ordering):
            raise ValueError("marker paging needs every ordering column in the same direction")
        columns = [column.lstrip("-") for column in ordering]
        strict, loose = ("lt", "lte") if descending else ("gt", "gte")
        condition = Q(**{f"{columns[-1]}__{strict}": values[-1]})
        for column, value in zip(reversed(columns[:-1]), reversed(values[:-1]), strict=True):
            condition = Q(**{f"{column}__{strict}": value}) | (Q(**{column: value}) & condition)
        return queryset.filter(Q(**{f"{columns[0]}__{loose}": values[0]}) & condition)

    def paginate_queryset(self, queryset, request, view=None):
        params = query_params(request)
        self.limit = _int_param(params, "limit", self.default_limit, 1, self.max_limit)
        ordering = self.get_ordering(queryset)
        queryset = queryset.order_by(*ordering)
        raw = params.get("marker")
        if raw:
            fields = [_field_of(queryset.model, column.lstrip("-")) for column in ordering]
            queryset = self.after(queryset, ordering, self.decode_marker(raw, fields))
        rows = list(queryset[: self.limit + 1])
        self.has_more = len(rows) > self.limit
        rows = rows[: self.limit]
        self.next_marker = None
        if self.has_more:
            self.next_marker = self.encode_marker([_value_of(rows[-1], c.lstrip("-")) for c in ordering])
        return rows

    def get_paginated_response(self, data):
        body = {self.results_key: data}
        if self.next_marker is not None:
            body["nextMarker"] = self.next_marker
        if self.has_more_key:
            body[self.has_more_key] = self.has_more
        return Response(body)

    def get_paginated_response_schema(self, schema):
        properties = {
            self.results_key: schema,
            "nextMarker": {
                **self.marker_schema,
                "description": "Send as marker for the next page; absent on the last page.",
            },
        }
        if self.has_more_key:
            properties[self.has_more_key] = {"type": "boolean", "description": "Whether more pages follow."}
        return {"type": "object", "required": [self.results_key], "properties": properties}

    marker_schema = {"type": "string"}

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Rows per page, 1 to {self.max_limit}; default {self.default_limit}.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": "marker",
                "in": "query",
                "required": False,
                "description": "The nextMarker of the previous page; without it, the first page.",
                "schema": self.marker_schema,
            },
        ]


class RepositoryMarkerPagination(MarkerPagination):
    """``{"repos": [...], "nextMarker": <int>}``, in the order of the repositories' ids; the marker is the
    last id shown (spec sections 12 and 13)."""

    results_key = "repos"
    ordering = ("id",)
    marker_schema = {"type": "integer", "minimum": 1}

    def encode_marker(self, values: list) -> int:
        return values[-1]

    def decode_marker(self, raw: str, fields: list) -> list:
        if not is_ascii_number(raw) or len(raw.lstrip("0")) > 18:
            raise _bad_marker(raw, "it is not a whole number of up to 18 digits.")
        return [int(raw)]


class TagMarkerPagination(MarkerPagination):
    """``{"tags": [...], "nextMarker": "<opaque>", "has_more": bool}`` (spec section 10)."""

    results_key = "tags"
    has_more_key = "has_more"
    unique_columns = ("id", "name")  # the list is one repository's, where tag names are unique
