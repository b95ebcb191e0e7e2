from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def assign_to_the_one_key(apps, schema_editor):
    """Until now one key served both environments, so the coupons and webhook events stored so far are
    of that key's mode. An upgrade keeps that key (STRIPE_SECRET_KEY names one environment): when exactly
    one environment has a key, they are its. Otherwise nothing tells: coupons stay test-mode ones (a
    wrong one is refused by Stripe and shown on the customer) and old events show on no status page."""
    with_key = [env for env, key in (("sandbox", settings.STRIPE_TEST_SECRET_KEY),
                                     ("live", settings.STRIPE_LIVE_SECRET_KEY)) if key]
    if len(with_key) != 1:
        return
    env = with_key[0]
    if env == "live":
        apps.get_model("billing", "Reward").objects.exclude(stripe_coupon_id="").update(
            stripe_live_coupon_id=F("stripe_coupon_id"), stripe_coupon_id="")
    apps.get_model("billing", "StripeEvent").objects.filter(env="").update(env=env)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0006_event_index_cleanup'),
    ]

    operations = [
        migrations.AddField(
            model_name='reward',
            name='stripe_live_coupon_id',
            field=models.CharField(blank=True, default='', help_text="The coupon standing for it in Stripe's live mode, for live customers.", max_length=255, verbose_name='Stripe live-mode coupon'),
        ),
        migrations.AddField(
            model_name='stripeevent',
            name='env',
            field=models.CharField(blank=True, choices=[('sandbox', 'Sandbox'), ('live', 'Live')], default='', help_text='The environment whose webhook signing secret verified it (empty: received before each had one).', max_length=8),
        ),
        migrations.AddField(
            model_name='stripeevent',
            name='outcome',
            field=models.CharField(blank=True, default='', help_text='What applying it did, or why it was ignored.', max_length=255),
        ),
        migrations.AlterField(
            model_name='reward',
            name='stripe_coupon_id',
            field=models.CharField(blank=True, default='', help_text="The coupon standing for it in Stripe's test mode, for sandbox customers.", max_length=255, verbose_name='Stripe test-mode coupon'),
        ),
        migrations.RunPython(assign_to_the_one_key, migrations.RunPython.noop),
    ]
