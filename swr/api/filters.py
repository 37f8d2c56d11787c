"""Query parameters of the listings: SWR's ``filter=key::value|...`` form, FilterSets and the backend.

SWR clients send filters either as ordinary parameters (``?namespace=x``) or
packed into one ``filter`` parameter (``?filter=namespace::x|mode::visible``).
:func:`query_params` unpacks the second form once per request; the FilterSets
and the paginator read only its result.
"""

import django_filters
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend

from swr.choices import CATEGORY_ALIASES, Category
from swr.errors import SwrError
from swr.models import Namespace, Repository, Tag

FILTER_PARAM = "filter"


def parse_filter(raw: str) -> dict[str, str]:
    """``key::value|key::value`` as a dict; raises a 400 for an entry without ``::``."""
    result = {}
    for entry in raw.split("|"):
        if not entry:
            continue
        key, sep, value = entry.partition("::")
        if not sep or not key:
            raise SwrError(
                f"Invalid filter entry {entry!r}: write filter=key::value|key::value, for example "
                "filter=namespace::group|name::nginx.",
                details=[{"field": FILTER_PARAM, "error_msg": f"entry {entry!r} has no key::value form"}],
            )
        result[key] = value
    return result


def query_params(request) -> QueryDict:
    """The request's query parameters with ``filter=`` unpacked; a parameter given on its own wins."""
    cached = getattr(request, "_swr_query_params", None)
    if cached is not None:
        return cached
    params = request.query_params.copy()
    for raw in params.pop(FILTER_PARAM, []):
        for key, value in parse_filter(raw).items():
            if key not in params:
                params[key] = value
    request._swr_query_params = params
    return params


class LowerContainsFilter(django_filters.CharFilter):
    """Names are lower case, so a 'contains' match on the lowered value is case-insensitive and index-friendly."""

    def __init__(self, *args, dollar_is_slash: bool = False, **kwargs):
        kwargs.setdefault("lookup_expr", "contains")
        super().__init__(*args, **kwargs)
        self.dollar_is_slash = dollar_is_slash

    def filter(self, qs, value):
        if value and self.dollar_is_slash:
            value = value.replace("$", "/")
        return super().filter(qs, value.lower() if value else value)


class ChoiceFilter(django_filters.ChoiceFilter):
    """A choice whose error message lists the valid values."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = ", ".join(str(value) for value, _ in self.extra["choices"])
        self.extra.setdefault("error_messages", {"invalid_choice": f"%(value)r is not one of: {allowed}."})


class NoOpFilter(ChoiceFilter):
    """A validated parameter that the FilterSet itself applies elsewhere (ordering, modes)."""

    def filter(self, qs, value):
        return qs


class RepositoryFilters(django_filters.FilterSet):
    """Filters of the repository lists, v2 and v3 (spec sections 5 and 13): the same parameters, one place."""

    namespace = LowerContainsFilter(field_name="namespace__name", help_text="Organization name contains this text.")
    name = LowerContainsFilter(
        field_name="name", dollar_is_slash=True, help_text="Repository name contains this text; '$' stands for '/'."
    )
    category = ChoiceFilter(
        choices=[*Category.choices, *((alias, alias) for alias in CATEGORY_ALIASES)],
        method="filter_category",
        help_text="Repository category.",
    )
    is_public = ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_is_public", help_text="true or false."
    )

    class Meta:
        model = Repository
        fields = []

    def filter_category(self, queryset, name, value):
        return queryset.filter(category=CATEGORY_ALIASES.get(value, value))

    def filter_is_public(self, queryset, name, value):
        return queryset.filter(is_public=value == "true")


class RepositoryFilterSet(RepositoryFilters):
    """Filters and ordering of ``GET /v2/manage/repos`` (the v3 list pages in the order of ids)."""

    ORDER_COLUMNS = {
        "name": ["name"],
        "updated_time": ["updated_at"],
        "tag_count": ["num_images"],
        "namespace": ["namespace__name", "name"],
        "is_public": ["is_public"],
    }

    order_column = NoOpFilter(
        choices=[(column, column) for column in ORDER_COLUMNS],
        help_text="Sort by this column. Without it: updated_time, newest first.",
    )
    order_type = NoOpFilter(choices=[("asc", "asc"), ("desc", "desc")], help_text="asc (default) or desc.")

    class Meta(RepositoryFilters.Meta):
        pass

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        column = self.form.cleaned_data.get("order_column")
        if column:
            descending = self.form.cleaned_data.get("order_type") == "desc"
            fields = self.ORDER_COLUMNS[column]
        else:
            descending = self.form.cleaned_data.get("order_type") != "asc"
            fields = self.ORDER_COLUMNS["updated_time"]
        # The id breaks ties, so that pages never overlap or skip a row.
        return queryset.order_by(*(f"-{f}" if descending else f for f in [*fields, "id"]))


class NamespaceFilterSet(django_filters.FilterSet):
    """Filters of ``GET /v2/manage/namespaces``."""

    namespace = LowerContainsFilter(field_name="name", help_text="Organization name contains this text.")
    mode = NoOpFilter(
        choices=[("visible", "visible")],
        help_text="visible: also list organizations where you hold only a repository-level permission.",
    )

    class Meta:
        model = Namespace
        fields = []


class TagFilterSet(django_filters.FilterSet):
    """Filters and ordering of the tag lists (spec section 10): ``tag`` (contains), ``order_column``
    (``updated_at`` or ``tag``; default updated_at), ``order_type`` (``asc``/``desc``; default desc).
    Every column in one direction, the id last: the marker pages of v3 walk the
    index ``swr_tag_list_updated`` (repository, updated_at, id) or the unique one on (repository, name)."""

    ORDER_COLUMNS = {"updated_at": ["updated_at", "id"], "tag": ["name"]}

    tag = django_filters.CharFilter(field_name="name", lookup_expr="contains", help_text="Tag contains this text.")
    order_column = NoOpFilter(
        choices=[(column, column) for column in ORDER_COLUMNS], help_text="Sort by this column; default updated_at."
    )
    order_type = NoOpFilter(choices=[("asc", "asc"), ("desc", "desc")], help_text="asc or desc (default).")

    class Meta:
        model = Tag
        fields = []

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        fields = self.ORDER_COLUMNS[self.form.cleaned_data.get("order_column") or "updated_at"]
        descending = self.form.cleaned_data.get("order_type") != "asc"
        return queryset.order_by(*(f"-{f}" if descending else f for f in fields))


class TagV3FilterSet(TagFilterSet):
    """The v3 tag list's parameters: the v2 list's, and ``with_manifest``."""

    with_manifest = NoOpFilter(
        choices=[("true", "true"), ("false", "false")],
        help_text="Whether each tag carries its manifest document (default false: an empty string).",
    )

    class Meta(TagFilterSet.Meta):
        pass


class SharedRepositoryFilterSet(django_filters.FilterSet):
    """Filters of ``GET /v3/manage/shared-repositories`` (spec section 12); ``shared_by`` is the view's."""

    namespace = LowerContainsFilter(field_name="namespace__name", help_text="Organization name contains this text.")
    name = LowerContainsFilter(
        field_name="name", dollar_is_slash=True, help_text="Repository name contains this text; '$' stands for '/'."
    )
    status = ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_status",
        help_text="true: only live shares; false: only expired ones.",
    )

    class Meta:
        model = Repository
        fields = []

    def filter_status(self, queryset, name, value):
        return queryset.filter(share_live=value == "true")


class SwrFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend reading the unpacked ``filter=`` parameters."""

    def get_filterset_kwargs(self, request, queryset, view):
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        kwargs["data"] = query_params(request)
        return kwargs
