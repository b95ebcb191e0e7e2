"""Daily usage per customer and feature, what the usage graphs read (billing/rollup.py), filled from
the events already recorded. Tracks keep adding to it from the moment this code serves; events that
an older server writes after this migration are not in it, so deploy with the old workers stopped, or
run `manage.py rebuild_usage_rollup` once the new ones serve. 0006 then drops the indexes it replaces.
"""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


def fill(apps, schema_editor):
    from billing import rollup

    rollup.rebuild(apps=apps)


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
    ]
