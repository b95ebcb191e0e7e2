"""An index that keeps the customer page fast for a customer with millions of events (see
docs/benchmarks.md).

The page's usage graphs sum each feature's usage per day over the last 30 days. With this covering
index on (customer, timestamp) carrying feature and value, that is an index-only scan, instead of
fetching one table page per few events (a customer with 2,000,000 events has ~160,000 in 30 days:
~21,000 table pages per view). The customers search's trigram indexes are in 0003.

Built CONCURRENTLY, so adding it to a large live events table does not block tracking; hence a
non-atomic migration.
"""

from django.db import migrations

GRAPH_INDEX = "event_customer_time_usage"


def create_index(apps, schema_editor):
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{GRAPH_INDEX}" ON "billing_event" '
        '("customer_id", "timestamp") INCLUDE ("feature_id", "value")'
    )


def drop_index(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{GRAPH_INDEX}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("billing", "0003_page_search_indexes")]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
