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
    # What the invoice bills, as Stripe's webhook says: null on invoices recorded before they were kept.
    lines = models.JSONField(
        null=True, blank=True, help_text="Line items: [{id, description, quantity, amount}] (minor units)."
    )
    subtotal = models.BigIntegerField(null=True, blank=True, help_text="Minor units, before discounts and tax.")
    tax = models.BigIntegerField(null=True, blank=True, help_text="Minor units.")
    discounts = models.JSONField(default=list, blank=True, help_text="[{name, amount}] (minor units).")
    amount_refunded = models.BigIntegerField(default=0, help_text="Minor units refunded of what was paid.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="invoice_amount_paid_non_negative"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0), name="invoice_amount_refunded_non_negative"),
        ]
        indexes = [models.Index(fields=["customer", "-created_at", "-id"], name="invoice_customer_time")]

    def __str__(self) -> str:
        return f"{self.stripe_id or self.pk}: {self.total} {self.currency} ({self.status})"

    @property
    def refundable(self) -> int:
        """What of the amount paid may still be refunded (minor units)."""
        return max(0, self.amount_paid - self.amount_refunded) if self.status == InvoiceStatus.PAID else 0

    @property
    def status_label(self) -> str:
        """The status as the invoice list shows it: a paid invoice refunded says how much of it."""
        if self.status == InvoiceStatus.PAID and self.amount_refunded > 0:
            return "Fully refunded" if self.amount_refunded >= self.amount_paid else "Partially refunded"
        return self.get_status_display()

    @property
    def status_class(self) -> str:
        """The badge's class: the status, or refunded."""
        return "refunded" if self.status == InvoiceStatus.PAID and self.amount_refunded > 0 else self.status


class InvoiceRefund(models.Model):
    """A Stripe refund of (part of) a paid invoice's payment, made from here."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="refunds")
    stripe_id = models.CharField(max_length=255, unique=True)
    amount = models.BigIntegerField(help_text="Minor units.")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_refund_amount_positive")]

    def __str__(self) -> str:
        return f"{self.stripe_id}: {self.amount}"


class CreditNoteReason(models.TextChoices):
    """Stripe's credit note reasons."""

    DUPLICATE = "duplicate", "Duplicate"
    FRAUDULENT = "fraudulent", "Fraudulent"
    ORDER_CHANGE = "order_change", "Order change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory", "Product unsatisfactory"


class CreditNote(models.Model):
    """A Stripe credit note on an open or paid invoice, issued from here or learnt from Stripe."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="credit_notes")
    stripe_id = models.CharField(max_length=255, unique=True)
    number = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, default="issued")
    total = models.BigIntegerField(help_text="Minor units credited, discounts and tax included.")
    refund_amount = models.BigIntegerField(default=0)
    credit_amount = models.BigIntegerField(default=0)
    out_of_band_amount = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=32, choices=CreditNoteReason.choices, blank=True, default="")
    memo = models.CharField(max_length=500, blank=True, default="")
    pdf = models.URLField(max_length=1000, blank=True, default="")
    lines = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.stripe_id}: {self.total}"


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
