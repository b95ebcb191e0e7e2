"""A customer's balance of one feature: its allowance, what is left, and when it resets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from billing.models.customer_products import (
    CustomerProduct,
)
from billing.models.entities import Entity
from billing.models.features import (
    QUANTITY,
    Feature,
    Interval,
)
from billing.models.products import Price, Product
from billing.quantities import overage
from customers.models import Customer


class LiveBalanceManager(models.Manager):
    """Balances that have not expired: an expired grant is gone from every read and write (its events stay)."""

    def get_queryset(self):
        return super().get_queryset().filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


class Balance(models.Model):
    """A customer's allowance of one feature (Autumn's customer entitlement).

    granted = allowance + adjustment; usage = granted - remaining.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="balances")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="balances")
    customer_product = models.ForeignKey(
        CustomerProduct,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="balances",
        help_text="The product that grants it; empty for a loose grant.",
    )
    entity = models.ForeignKey(
        Entity,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="balances",
        help_text="The entity (seat, workspace) it belongs to, for a plan's per-entity item; empty: the customer's.",
    )
    allowance = models.DecimalField(**QUANTITY, default=Decimal(0))
    adjustment = models.DecimalField(**QUANTITY, default=Decimal(0))
    remaining = models.DecimalField(**QUANTITY, default=Decimal(0))
    unlimited = models.BooleanField(default=False)
    overage_allowed = models.BooleanField(default=False)
    usage_limit = models.DecimalField(**QUANTITY, null=True, blank=True)
    interval = models.CharField(max_length=16, choices=Interval.choices, default=Interval.MONTH)
    interval_count = models.PositiveSmallIntegerField(default=1)
    next_reset_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A grant's end: from then on it is gone from balances and checks."
    )
    api_id = models.CharField(
        max_length=64, blank=True, default="", help_text="The balance_id a grant was given through the API, if any."
    )
    earlier_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="The balances this one continues (replaced by Customize), oldest first: their edits are its own.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    all_objects = models.Manager()  # expired grants too (what cascades and the related lookups see)
    objects = LiveBalanceManager()

    class Meta:
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        ordering = ["feature__name", "id"]
        permissions = [("adjust_balance", "Can edit a customer's feature balance")]
        constraints = [
            models.CheckConstraint(condition=Q(allowance__gte=0), name="balance_allowance_non_negative"),
            models.CheckConstraint(condition=Q(interval__in=Interval.values), name="balance_interval_valid"),
            models.CheckConstraint(
                condition=Q(overage_allowed=True) | Q(unlimited=True) | Q(remaining__gte=0),
                name="balance_negative_only_with_overage",
            ),
            models.UniqueConstraint(
                fields=["customer_product", "feature"],
                condition=Q(customer_product__isnull=False, entity__isnull=True),
                name="balance_one_per_product_feature",
            ),
            models.UniqueConstraint(
                fields=["customer_product", "feature", "entity"],
                condition=Q(customer_product__isnull=False, entity__isnull=False),
                name="balance_one_per_product_feature_entity",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "feature"], name="balance_customer_feature"),
            models.Index(fields=["next_reset_at"], name="balance_next_reset"),
            # The list's balance filters (remaining below N, in overage; unlimited) and its feature sorts.
            models.Index(
                fields=["feature", "remaining"], condition=Q(unlimited=False), name="balance_feature_remaining"
            ),
            models.Index(fields=["feature"], condition=Q(unlimited=True), name="balance_feature_unlimited"),
            # In overage, probed per customer as the list walks newest first (a small index).
            models.Index(
                fields=["customer", "feature"],
                condition=Q(unlimited=False, remaining__lt=0),
                name="balance_customer_overage",
            ),
            # The list's feature sorts: the plan's balance of the feature, walked in order (remaining, usage).
            models.Index(
                fields=["feature", "remaining", "id"],
                condition=Q(unlimited=False, customer_product__isnull=False),
                name="balance_plan_remaining",
            ),
            models.Index(
                F("feature"),
                F("allowance") + F("adjustment") - F("remaining"),
                F("id"),
                condition=Q(unlimited=False, customer_product__isnull=False),
                name="balance_plan_usage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.feature_id} {self.remaining}/{self.granted}"

    @property
    def granted(self) -> Decimal:
        return self.allowance + self.adjustment

    @property
    def usage(self) -> Decimal:
        return self.granted - self.remaining

    @property
    def overage(self) -> Decimal:
        return overage(self.remaining)

    @property
    def resets(self) -> bool:
        return self.interval != Interval.LIFETIME

    def usage_price(self, product: Product | None = None) -> Price | None:
        """Its product's usage price of its feature; None for a grant outside any plan. `product`: its product as
        the caller read it (with its prices), else the one of its customer_product."""
        if self.customer_product_id is None:
            return None
        return (product or self.customer_product.product).usage_price_for(self.feature_id)

    def overage_price(self, product: Product | None = None) -> Price | None:
        """The price its overage is charged at on the invoice: its usage price where overage is allowed (never for
        an unlimited balance), else None."""
        return self.usage_price(product) if self.overage_allowed and not self.unlimited else None

    @property
    def balance_id(self) -> str:
        """The id the API names a balance by: the caller's balance_id of a grant, else ours."""
        return self.api_id or f"bal_{self.pk}"

    @property
    def is_granted(self) -> bool:
        """A grant outside any plan (Create Balance, `balances.create`)."""
        return self.customer_product_id is None

    def lost_at(self) -> datetime | None:
        """When what remains of it would be lost: its next reset or its expiry, whichever comes first."""
        moments = [m for m in (self.next_reset_at if self.resets else None, self.expires_at) if m is not None]
        return min(moments, default=None)

    def is_due(self, now) -> bool:
        """Has its reset time passed (so that it goes back to its allowance on the next read or write)?"""
        return self.resets and self.next_reset_at is not None and self.next_reset_at <= now
