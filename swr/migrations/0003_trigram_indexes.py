"""Trigram indexes for the "contains" filters of the listings, on PostgreSQL only.

``name`` and ``namespace`` filters match any part of a name (LIKE '%x%'),
which a B-tree index cannot serve; a GIN trigram index can. SQLite has no
such index and scans, which is fine for the embedded development database.
"""

from django.db import migrations

INDEXES = [
    ("swr_repo_name_trgm", "swr_repository"),
    ("swr_namespace_name_trgm", "swr_namespace"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index, table in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin (name gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")


class Migration(migrations.Migration):
    dependencies = [("swr", "0002_repository_counts_and_listing_indexes")]

    operations = [migrations.RunPython(create, drop)]
