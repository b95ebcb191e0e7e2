"""The customers list's indexes for its feature sorts and sparse filters, and the backfill of the kept
Customer.has_live_product (the No product filter)."""


import django.db.models.expressions
from django.db import migrations, models
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
        ("billing", "0018_product_free_trial"),
        ("customers", "0003_has_live_product"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="balance",
            index=models.Index(
                condition=models.Q(("customer_product__isnull", False), ("unlimited", False)),
                fields=["feature", "remaining", "id"],
                name="balance_plan_remaining",
            ),
        ),
        migrations.AddIndex(
            model_name="balance",
            index=models.Index(
                models.F("feature"),
                django.db.models.expressions.CombinedExpression(
                    django.db.models.expressions.CombinedExpression(models.F("allowance"), "+", models.F("adjustment")),
                    "-",
                    models.F("remaining"),
                ),
                models.F("id"),
                condition=models.Q(("customer_product__isnull", False), ("unlimited", False)),
                name="balance_plan_usage",
            ),
        ),
        migrations.RemoveIndex(
            model_name="customerproduct",
            name="cusprod_cancelling",
        ),
        migrations.AddIndex(
            model_name="balance",
            index=models.Index(
                condition=models.Q(("remaining__lt", 0), ("unlimited", False)),
                fields=["customer", "feature"],
                name="balance_customer_overage",
            ),
        ),
        migrations.AddIndex(
            model_name="customerproduct",
            index=models.Index(
                condition=models.Q(("canceled_at__isnull", False)),
                fields=["customer", "status"],
                name="cusprod_cancelling_status",
            ),
        ),
        migrations.AddIndex(
            model_name="customerproduct",
            index=models.Index(
                condition=models.Q(("status__in", ["past_due", "trialing"])),
                fields=["customer", "status"],
                name="cusprod_customer_troubled",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
