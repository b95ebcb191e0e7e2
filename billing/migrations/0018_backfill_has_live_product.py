from django.db import migrations
from django.db.models import Exists, OuterRef

LIVE = ("active", "trialing", "past_due")


def backfill(apps, schema_editor):
    """Customer.has_live_product from the customer products there are (one UPDATE)."""
    Customer = apps.get_model("customers", "Customer")
    CustomerProduct = apps.get_model("billing", "CustomerProduct")
    live = Exists(CustomerProduct.objects.filter(customer=OuterRef("pk"), status__in=LIVE))
    Customer.objects.update(has_live_product=live)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_list_feature_sorts"),
        ("customers", "0003_has_live_product"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
