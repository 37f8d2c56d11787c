"""Paging of ``GET /v2/manage/repos``: limit and offset, and the Content-Range header."""

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
