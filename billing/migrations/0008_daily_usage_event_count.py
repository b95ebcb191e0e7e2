"""How many events each day of the daily usage adds up, so events.aggregate answers its counts from the
rollup. Filled from the events already recorded (as 0005 did); tracks add to it from the moment this
code serves. Events an older server writes after this migration count in the sums but not here: deploy
with the old workers stopped, or run `manage.py rebuild_usage_rollup` once the new ones serve.
"""

from django.db import migrations, models


def fill(apps, schema_editor):
    from billing import rollup

    rollup.rebuild(apps=apps)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_stripe_per_environment'),
    ]

    operations = [
        migrations.AddField(
            model_name='dailyusage',
            name='events',
            field=models.PositiveBigIntegerField(db_default=0, default=0, help_text='How many events the day adds up.'),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
