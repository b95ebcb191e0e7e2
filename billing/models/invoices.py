"""What Stripe tells us: invoices and the webhook events received."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from customers.models import Customer, Env


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


class Invoice(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="invoices")
    stripe_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    total = models.BigIntegerField(default=0, help_text="Minor units.")
    amount_paid = models.BigIntegerField(default=0, help_text="Minor units.")
    currency = models.CharField(max_length=3, default="usd")
    hosted_invoice_url = models.URLField(max_length=1000, blank=True, default="")
    invoice_pdf = models.URLField("PDF URL", max_length=1000, blank=True, default="")
    product_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    stripe_updated_at = models.BigIntegerField(
        null=True, blank=True, help_text="Creation time of the newest Stripe event applied (out-of-order guard)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="invoice_amount_paid_non_negative"),
        ]
        indexes = [models.Index(fields=["customer", "-created_at", "-id"], name="invoice_customer_time")]

    def __str__(self) -> str:
        return f"{self.stripe_id or self.pk}: {self.total} {self.currency} ({self.status})"


class StripeEvent(models.Model):
    """A Stripe webhook event already processed: each is applied once."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    created = models.BigIntegerField()
    received_at = models.DateTimeField(default=timezone.now)
    env = models.CharField(
        max_length=8,
        choices=Env.choices,
        blank=True,
        default="",
        help_text="The environment whose webhook signing secret verified it (empty: received before each had one).",
    )
    outcome = models.CharField(
        max_length=255, blank=True, default="", help_text="What applying it did, or why it was ignored."
    )

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
