"""The credits each metered feature drew from each credit pool per customer and day (DailyCreditDraw), what a
pool's chart splits its usage by; filled from the draws already recorded, in the zone the daily rollup counts
days in (none yet: nothing to fill, `rebuild_usage_rollup` fills both). As with 0005, draws an older server
writes after this migration are not in it: deploy with the old workers stopped, or rebuild once the new serve."""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models

from billing import rollup


def fill(apps, schema_editor):
    state = apps.get_model("billing", "UsageRollup").objects.order_by("pk").first()
    if state is not None:
        rollup.rebuild_draws(state.time_zone)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0020_never_resets_label'),
        ('customers', '0004_customer_tokens'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyCreditDraw',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('value', models.DecimalField(decimal_places=6, default=Decimal('0'), help_text='In credits.', max_digits=32)),
                ('credit_system', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.feature')),
                ('customer', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='customers.customer')),
                ('feature', models.ForeignKey(db_index=False, help_text='The drawing feature.', on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.feature')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('customer', 'credit_system', 'day', 'feature'), name='dailycreditdraw_customer_pool_day')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
    ]
