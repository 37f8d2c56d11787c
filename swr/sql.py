"""Names for the project's few hand-written SQL statements (docs/architecture.md, "Hand-written SQL").

Every table and column name comes from the models' ``_meta``, quoted for the database in use, so that a
statement follows the models as the ORM's do.
"""

from django.db import connection


class Table:
    """A model's table in hand-written SQL, under ``alias`` when given.

    ``str(table)`` is ``"table"`` (or ``"table" alias``) for a FROM or JOIN; ``table["<field>"]`` is the column
    of that field (``"pk"``: the primary key's), qualified by the alias when there is one; ``table.columns()``
    lists every concrete field's column in the model's order (the order ``Manager.raw()`` maps them in).
    """

    def __init__(self, model, alias: str = ""):
        self._model, self._alias = model, alias

    def __str__(self) -> str:
        name = connection.ops.quote_name(self._model._meta.db_table)
        return f"{name} {self._alias}" if self._alias else name

    def __getitem__(self, field: str) -> str:
        meta = self._model._meta
        column = connection.ops.quote_name(meta.pk.column if field == "pk" else meta.get_field(field).column)
        return f"{self._alias}.{column}" if self._alias else column

    def columns(self) -> str:
        return ", ".join(self[field.name] for field in self._model._meta.concrete_fields)
