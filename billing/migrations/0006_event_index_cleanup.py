"""Two fewer index entries per track: the graph's covering index of 0004 (the graphs read the daily
rollup of 0005 now) and the events' own customer index (the composite indexes start with the
customer). Its own migration, so that the brief exclusive lock of dropping an index on the events is
not held while 0005 reads every event.
"""

import django.db.models.deletion
from django.db import migrations, models

GRAPH_INDEX = "event_customer_time_usage"


def drop_graph_index(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{GRAPH_INDEX}"')


def create_graph_index(apps, schema_editor):
    schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{GRAPH_INDEX}" ON "billing_event" '
                          '("customer_id", "timestamp") INCLUDE ("feature_id", "value")')


class Migration(migrations.Migration):

    dependencies = [("billing", "0005_daily_usage")]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="customer",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="events", to="customers.customer"),
        ),
        migrations.RunPython(drop_graph_index, create_graph_index, elidable=False),
    ]
