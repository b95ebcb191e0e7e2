"""Trigram indexes for the customers list search (a case-insensitive substring of id, name, email or
fingerprint), so it stays fast at a million customers. PostgreSQL only: SQLite has no pg_trgm and
migrates past this untouched.

The indexed expression is the one Django's `icontains` emits on PostgreSQL, UPPER("col"::text), so
the planner can use the index for `UPPER(col::text) LIKE UPPER('%term%')`. The indexes are built
CONCURRENTLY (no write lock on a large live table), hence a non-atomic migration.
"""

from django.db import migrations

COLUMNS = ["customer_id", "name", "email", "fingerprint"]


def index_name(column: str) -> str:
    return f"customer_{column}_trgm"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{index_name(column)}" ON "customers_customer" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index_name(column)}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
