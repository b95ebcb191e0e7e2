"""What a customer holds: a product attached, with its status, and the live-product flag kept from it."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.products import Product
from customers.models import Customer


class CustomerProductStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    TRIALING = "trialing", "Trialing"
    PAST_DUE = "past_due", "Past due"
    SCHEDULED = "scheduled", "Scheduled"
    EXPIRED = "expired", "Expired"


STATUS_LABELS = {
    CustomerProductStatus.ACTIVE: "Active",
    CustomerProductStatus.TRIALING: "Trial",
    CustomerProductStatus.PAST_DUE: "Past Due",
    CustomerProductStatus.SCHEDULED: "Scheduled",
    CustomerProductStatus.EXPIRED: "Expired",
}

LIVE_PRODUCT_STATUSES = (
    CustomerProductStatus.ACTIVE,
    CustomerProductStatus.TRIALING,
    CustomerProductStatus.PAST_DUE,
)
# What a customer holds: live, or scheduled to start at the end of a period.
HELD_PRODUCT_STATUSES = (*LIVE_PRODUCT_STATUSES, CustomerProductStatus.SCHEDULED)


class CustomerProduct(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="customer_products")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="customer_products")
    status = models.CharField(
        max_length=16, choices=CustomerProductStatus.choices, default=CustomerProductStatus.ACTIVE
    )
    started_at = models.DateTimeField(default=timezone.now)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="")
    stripe_updated_at = models.BigIntegerField(
        null=True, blank=True, help_text="Creation time of the newest Stripe event applied (out-of-order guard)."
    )
    granted_free = models.BooleanField(
        default=False, help_text="A paid product put on the customer without a charge (Grant for free, with a reason)."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CustomerProductStatus.values), name="customer_product_status_valid"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="customer_product_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["customer", "status"], name="cusprod_customer_status"),
            models.Index(fields=["product", "status"], name="cusprod_product_status"),
            models.Index(fields=["stripe_subscription_id"], name="cusprod_stripe_sub"),
            # The list's status filters: past due (drives from the few rows with that status), Cancelling.
            models.Index(fields=["status", "customer"], name="cusprod_status_customer"),
            # Probed per customer as the list walks newest first: small, and answering from the index alone.
            models.Index(
                fields=["customer", "status"], condition=Q(canceled_at__isnull=False), name="cusprod_cancelling_status"
            ),
            models.Index(
                fields=["customer", "status"],
                condition=Q(status__in=[CustomerProductStatus.PAST_DUE, CustomerProductStatus.TRIALING]),
                name="cusprod_customer_troubled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.product} ({self.status})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        keep_live_product_flag(self.customer_id)

    def delete(self, *args, **kwargs):
        customer_id = self.customer_id
        deleted = super().delete(*args, **kwargs)
        keep_live_product_flag(customer_id)
        return deleted

    @property
    def is_cancelling(self) -> bool:
        """Live, but ending at the end of its billing period (a cancellation or a downgrade is pending)."""
        return self.status in LIVE_PRODUCT_STATUSES and self.canceled_at is not None

    @property
    def status_label(self) -> str:
        """The status as Autumn's dashboard names it: Active, Trial, Cancelling, Scheduled, Past Due, Expired."""
        if self.is_cancelling:
            return "Cancelling"
        return STATUS_LABELS[self.status]


def live_product_exists():
    return models.Exists(
        CustomerProduct.objects.filter(customer=models.OuterRef("pk"), status__in=LIVE_PRODUCT_STATUSES)
    )


def keep_live_product_flag(customer_id: int) -> None:
    """Set `Customer.has_live_product` from the customer's products, in the caller's transaction. Every save
    and delete of a customer product calls it (the list's "No product" filter reads the flag), and it writes
    only when the flag changes. Code that changes a status with `QuerySet.update()` must call it too."""
    live = live_product_exists()
    Customer.objects.filter(pk=customer_id).exclude(has_live_product=live).update(has_live_product=live)
