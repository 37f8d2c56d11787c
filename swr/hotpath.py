"""The statements every request runs, written out once instead of compiled by the ORM each time.

Every API call authenticates, most look an organization up, and every change
writes an audit record. Compiling those queries through the ORM costs more
Python time than the database takes to answer them (a create spent most of its
time there), so these few statements are built here once per process, from the
models' metadata (so they follow the migrations), and their rows are turned
into model instances as the ORM itself does it: through the database's value
converters, ``Model.from_db`` and the related-object cache of ``select_related``.
Both database engines run them; the tests run them on both.
"""

from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model

from swr.models import AccessKey, ApiToken, Namespace, NamespacePermission, Tenant, User


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


class _Columns:
    """The concrete columns of ``model`` under a table alias, and how to turn them into an instance."""

    def __init__(self, model: type[Model], alias: str):
        self.model = model
        self.fields = model._meta.concrete_fields
        self.attnames = [field.attname for field in self.fields]
        self.sql = ", ".join(f"{alias}.{_quote(field.column)}" for field in self.fields)
        self.converters = []
        for index, field in enumerate(self.fields):
            column = field.get_col(alias)
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if converters:
                self.converters.append((index, column, converters))

    def __len__(self) -> int:
        return len(self.fields)

    def instance(self, values) -> Model | None:
        """The instance of a row slice; None for the all-NULL slice of a LEFT JOIN that found nothing."""
        if values[0] is None:
            return None
        if self.converters:
            values = list(values)
            database = connections[DEFAULT_DB_ALIAS]
            for index, column, converters in self.converters:
                for converter in converters:
                    values[index] = converter(values[index], column, database)
        return self.model.from_db(DEFAULT_DB_ALIAS, self.attnames, values)


def _cache_related(instance: Model, field_name: str, related: Model | None) -> None:
    """What ``select_related`` does: the related object is there without another query."""
    instance._meta.get_field(field_name).set_cached_value(instance, related)


def _split(row, *parts: _Columns):
    start = 0
    for part in parts:
        yield part.instance(row[start : start + len(part)])
        start += len(part)


def _grant_level(user_column: str) -> str:
    """The level of the grant of the user in ``user_column`` on namespace ``n`` (NULL without one)."""
    grants = _quote(NamespacePermission._meta.db_table)
    return (
        f"(SELECT g.{_quote('level')} FROM {grants} g "
        f"WHERE g.{_quote('namespace_id')} = n.{_quote('id')} AND g.{_quote('user_id')} = {user_column})"
    )


@cache
def _credential_statement(model: type[Model], key_column: str, with_namespace: bool):
    parts = (_Columns(model, "k"), _Columns(User, "u"), _Columns(Tenant, "t"))
    columns, namespace_join = ", ".join(part.sql for part in parts), ""
    if with_namespace:
        parts += (_Columns(Namespace, "n"),)
        columns += f", {parts[-1].sql}, {_grant_level('k.' + _quote('user_id'))}"
        namespace_join = f"LEFT OUTER JOIN {_quote(Namespace._meta.db_table)} n ON n.{_quote('name')} = %s "
    sql = (
        f"SELECT {columns} "
        f"FROM {_quote(model._meta.db_table)} k "
        f"INNER JOIN {_quote(User._meta.db_table)} u ON u.{_quote('id')} = k.{_quote('user_id')} "
        f"LEFT OUTER JOIN {_quote(Tenant._meta.db_table)} t ON t.{_quote('id')} = u.{_quote('tenant_id')} "
        f"{namespace_join}WHERE k.{_quote(key_column)} = %s"
    )
    return sql, parts


def _credential(model: type[Model], key_column: str, key: str, namespace: str | None):
    """The credential whose ``key_column`` is ``key``, with its user and the user's tenant; one query.

    With ``namespace``, the same query loads that namespace (alone, no tenant or creator) with the
    credential's user's grant level on it, as the credential's ``loaded_namespace`` (None when no
    namespace has that name): a request that names an organization learns who calls and about what
    in one round trip.
    """
    sql, parts = _credential_statement(model, key_column, namespace is not None)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key] if namespace is None else [namespace, key])
        row = cursor.fetchone()
    if row is None:
        return None
    if namespace is None:
        credential, user, tenant = _split(row, *parts)
    else:
        credential, user, tenant, found = _split(row[:-1], *parts)
        if found is not None:
            found.granted_level = row[-1]
        credential.loaded_namespace = found
    _cache_related(user, "tenant", tenant)
    _cache_related(credential, "user", user)
    return credential


def api_token(key_hash: str, namespace: str | None = None) -> ApiToken | None:
    """The API token of this hash, with ``user`` and ``user.tenant`` loaded (one query); with
    ``namespace``, also that namespace as ``loaded_namespace`` (see :func:`_credential`)."""
    return _credential(ApiToken, "key_hash", key_hash, namespace)


def access_key(key: str, namespace: str | None = None) -> AccessKey | None:
    """The access key (AK), with ``user`` and ``user.tenant`` loaded (one query); with ``namespace``,
    also that namespace as ``loaded_namespace`` (see :func:`_credential`)."""
    return _credential(AccessKey, "access_key", key, namespace)


@cache
def _namespace_statement(related: bool):
    namespace = _Columns(Namespace, "n")
    parts = (namespace, _Columns(Tenant, "t"), _Columns(User, "c")) if related else (namespace,)
    joins = (
        f"INNER JOIN {_quote(Tenant._meta.db_table)} t ON t.{_quote('id')} = n.{_quote('tenant_id')} "
        f"LEFT OUTER JOIN {_quote(User._meta.db_table)} c ON c.{_quote('id')} = n.{_quote('creator_id')} "
        if related
        else ""
    )
    sql = (
        f"SELECT {', '.join(part.sql for part in parts)}, {_grant_level('%s')} "
        f"FROM {_quote(Namespace._meta.db_table)} n {joins}"
        f"WHERE n.{_quote('name')} = %s"
    )
    return sql, parts


def namespace_with_level(name: str, user: User, *, related: bool = True) -> Namespace | None:
    """The namespace of this name and the user's own grant level on it as ``granted_level`` (None
    without a grant): what :func:`swr.policy.with_user_level` annotates. With ``related``, its tenant
    and creator come in the same query; without, they are not loaded (a path that does not show them)."""
    sql, parts = _namespace_statement(related)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, name])
        row = cursor.fetchone()
    if row is None:
        return None
    namespace, *loaded = _split(row[:-1], *parts)
    if related:
        tenant, creator = loaded
        _cache_related(namespace, "tenant", tenant)
        _cache_related(namespace, "creator", creator)
    namespace.granted_level = row[-1]
    return namespace


@cache
def _insert_fields(model: type[Model]) -> list:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


@cache
def insert_target(model: type[Model]) -> tuple[str, str, int]:
    """Table, column list and number of values of an INSERT of a ``model`` row (all but the primary key)."""
    fields = _insert_fields(model)
    return _quote(model._meta.db_table), ", ".join(_quote(field.column) for field in fields), len(fields)


def insert_values(obj: Model) -> list:
    """The values of ``insert_target(type(obj))``'s columns, as ``obj.save(force_insert=True)`` would
    write them (defaults, auto_now and values prepared for the database)."""
    database = connections[DEFAULT_DB_ALIAS]  # not the proxy: it is read once per field
    return [field.get_db_prep_save(field.pre_save(obj, add=True), database) for field in _insert_fields(type(obj))]


def insert_parts(obj: Model) -> tuple[str, str, list]:
    """Table, column list and values to INSERT ``obj`` as ``obj.save(force_insert=True)`` would."""
    table, columns, _ = insert_target(type(obj))
    return table, columns, insert_values(obj)


def inserted(obj: Model, pk) -> Model:
    """Mark ``obj`` as saved with primary key ``pk``."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = DEFAULT_DB_ALIAS
    return obj


def insert(obj: Model) -> Model:
    """INSERT ``obj`` in one statement, as ``obj.save(force_insert=True)`` would."""
    table, columns, values = insert_parts(obj)
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING {_quote('id')}", values)
        return inserted(obj, cursor.fetchone()[0])
