"""Indexes that keep the dashboard fast at scale (see docs/benchmarks.md). PostgreSQL only: SQLite has
no pg_trgm and migrates past this untouched.

- Trigram indexes for the customers list search (a case-insensitive substring of id, name, email or
  fingerprint), so it stays fast at a million customers.
- A covering index for the customer page's usage graphs: daily usage per feature over 30 days is
  summed from an index-only scan of (customer, timestamp) carrying feature and value, instead of
  reading one heap page per few events (a customer with 2,000,000 events has ~160,000 in 30 days).

The indexed expression is the one Django's `icontains` emits on PostgreSQL, UPPER("col"::text), so
the planner can use the index for `UPPER(col::text) LIKE UPPER('%term%')`. The indexes are built
CONCURRENTLY (no write lock on a large live table), hence a non-atomic migration.
"""

from django.db import migrations

COLUMNS = ["customer_id", "name", "email", "fingerprint"]
GRAPH_INDEX = "event_customer_time_usage"


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
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{GRAPH_INDEX}" ON "billing_event" '
        '("customer_id", "timestamp") INCLUDE ("feature_id", "value")'
    )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index_name(column)}"')
    schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{GRAPH_INDEX}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0001_initial"),
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
