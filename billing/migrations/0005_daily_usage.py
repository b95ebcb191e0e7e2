"""Daily usage per customer and feature, what the usage graphs read (billing/rollup.py), filled from
the events already recorded. It replaces 0004's covering index for the graphs, and the events lose
their separate customer index (the composite indexes start with the customer): two fewer indexes
for every track to write.
"""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


GRAPH_INDEX = "event_customer_time_usage"


def fill(apps, schema_editor):
    from billing import rollup

    rollup.rebuild(apps=apps)


def drop_graph_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{GRAPH_INDEX}"')


def create_graph_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{GRAPH_INDEX}" ON "billing_event" '
                              '("customer_id", "timestamp") INCLUDE ("feature_id", "value")')


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_event_graph_index'),
        ('customers', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='UsageRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('time_zone', models.CharField(max_length=64)),
                ('rebuilt_at', models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.AlterField(
            model_name='event',
            name='customer',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='customers.customer'),
        ),
        migrations.CreateModel(
            name='DailyUsage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('value', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=32)),
                ('customer', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='customers.customer')),
                ('feature', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.feature')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('customer', 'day', 'feature'), name='dailyusage_customer_day_feature')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(drop_graph_index, create_graph_index, elidable=False),
    ]
