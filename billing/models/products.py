"""The catalogue's plans: products, their prices and the features each includes."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.intervals import add_intervals
from billing.models.features import (
    QUANTITY,
    SLUG_PATTERN,
    Feature,
    Interval,
    PriceInterval,
)
from customers.models import Customer


class ProductQuerySet(models.QuerySet):
    def newest(self):
        """The newest version of each catalogue product (never a customer's custom copy): what is offered.
        Customers on an older version keep it, but new ones get the newest."""
        newer = Product.objects.filter(
            product_id=models.OuterRef("product_id"), custom_for__isnull=True, version__gt=models.OuterRef("version")
        )
        return self.filter(custom_for__isnull=True).exclude(models.Exists(newer))

    def defaults(self):
        """The catalogue's default products, which a new customer starts on (Autumn's free plan)."""
        return self.newest().filter(is_default=True, archived=False)


class TrialUnit(models.TextChoices):
    DAY = "day", "Days"
    MONTH = "month", "Months"
    YEAR = "year", "Years"


class Product(models.Model):
    """A plan. A custom product is a copy made for one customer only."""

    product_id = models.CharField("ID", max_length=255)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="", max_length=2000)
    version = models.PositiveIntegerField(default=1)
    group = models.CharField(max_length=100, blank=True, default="")
    is_add_on = models.BooleanField("add-on", default=False)
    is_default = models.BooleanField(default=False)
    custom_for = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="custom_products",
        help_text="Set on a custom product: the only customer it is for.",
    )
    base_product = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="custom_versions"
    )
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # A free trial (Autumn's free_trial): `trial_length` days, months or years before the first charge; none
    # when trial_length is null. A customer has one trial of a plan, ever.
    trial_length = models.PositiveSmallIntegerField(null=True, blank=True)
    trial_unit = models.CharField(max_length=5, blank=True, default="", choices=TrialUnit.choices)
    trial_card_required = models.BooleanField(default=False)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["product_id", "version"],
                condition=Q(custom_for__isnull=True),
                name="product_id_version_unique",
            ),
            models.UniqueConstraint(
                fields=["custom_for", "product_id", "version"],
                condition=Q(custom_for__isnull=False),
                name="custom_product_unique_per_customer",
            ),
            models.CheckConstraint(condition=Q(product_id__regex=SLUG_PATTERN), name="product_id_pattern"),
            models.CheckConstraint(condition=Q(version__gte=1), name="product_version_positive"),
            models.CheckConstraint(
                condition=Q(trial_length__isnull=True, trial_unit="")
                | Q(trial_length__gte=1, trial_unit__in=["day", "month", "year"]),
                name="product_trial_length_and_unit",
                violation_error_message="A free trial needs both its length (1 or more) and its unit.",
            ),
        ]

    def __str__(self) -> str:
        label = f"{self.name} (v{self.version})" if self.version > 1 else self.name
        return f"{label} · custom" if self.custom_for_id else label

    @property
    def is_custom(self) -> bool:
        return self.custom_for_id is not None

    @property
    def has_trial(self) -> bool:
        return bool(self.trial_length)

    def trial_end(self, start):
        """When a trial of this plan started at `start` ends (None: the plan has no trial)."""
        if not self.trial_length:
            return None
        return add_intervals(start, self.trial_unit or TrialUnit.DAY, self.trial_length)

    # The price rules, read from the prefetched `prices` (no query when the caller prefetched them).
    @property
    def recurring_price(self) -> Price | None:
        """The fixed price charged every billing interval (a plan's), or None for a free or one-off product."""
        return next((p for p in self.prices.all() if p.is_recurring), None)

    def usage_price_for(self, feature_id: int) -> Price | None:
        """The per-unit price of usage beyond the allowance of one feature, or None: the one lookup of a usage
        price (every reader goes through it, `item_usage_price` or `Balance.usage_price`; the engine's load
        statement reads the same row in SQL)."""
        return next((p for p in self.prices.all() if p.type == Price.Type.USAGE and p.feature_id == feature_id), None)

    def item_usage_price(self, item: ProductItem) -> Price | None:
        """What usage beyond one of its items' allowance costs: the feature's usage price where the item allows
        overage, else None (usage past the allowance is then stopped, or not charged)."""
        return self.usage_price_for(item.feature_id) if item.overage_allowed else None

    @property
    def is_free(self) -> bool:
        return not any(p.amount > 0 for p in self.prices.all())

    @property
    def is_one_off(self) -> bool:
        """Bought once (every price is a one-off fixed price), not subscribed to."""
        prices = list(self.prices.all())
        return bool(prices) and all(p.type == Price.Type.FIXED and p.interval == "one_off" for p in prices)


class Price(models.Model):
    """A fixed amount per interval, or a per-unit price for usage of a metered item beyond its allowance."""

    class Type(models.TextChoices):
        FIXED = "fixed", "Fixed"
        USAGE = "usage", "Usage (overage)"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="prices")
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.FIXED)
    feature = models.ForeignKey(
        Feature,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="For a usage price: the metered feature it charges for.",
    )
    amount = models.PositiveBigIntegerField(help_text="Minor units (cents) per interval, or per billing units.")
    currency = models.CharField(max_length=3, default="usd")
    interval = models.CharField(max_length=16, choices=PriceInterval.choices, default=PriceInterval.MONTH)
    interval_count = models.PositiveSmallIntegerField(default=1)
    billing_units = models.DecimalField(
        **QUANTITY, default=Decimal(1), help_text="A usage price charges `amount` per this many units."
    )
    stripe_price_id = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["product", "type", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(type__in=["fixed", "usage"]), name="price_type_valid"),
            models.CheckConstraint(
                condition=Q(type="fixed") | Q(feature__isnull=False), name="usage_price_has_feature"
            ),
            models.CheckConstraint(condition=Q(billing_units__gt=0), name="price_billing_units_positive"),
            models.CheckConstraint(condition=Q(interval__in=PriceInterval.values), name="price_interval_valid"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="price_currency_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.type} {self.amount} {self.currency}"

    @property
    def is_recurring(self) -> bool:
        return self.type == Price.Type.FIXED and self.interval != "one_off"


class ProductItem(models.Model):
    """A feature a product includes, with its allowance and how it resets."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="items")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="product_items")
    included = models.DecimalField(**QUANTITY, default=Decimal(0), help_text="Included allowance.")
    unlimited = models.BooleanField(default=False)
    interval = models.CharField(max_length=16, choices=Interval.choices, default=Interval.MONTH)
    interval_count = models.PositiveSmallIntegerField(default=1)
    overage_allowed = models.BooleanField(default=False)
    usage_limit = models.DecimalField(**QUANTITY, null=True, blank=True)
    entity_feature = models.ForeignKey(
        Feature,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="per_entity_items",
        help_text="Per entity: each of the customer's entities counted by this feature (seats) gets its own balance.",
    )

    class Meta:
        ordering = ["product", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "feature"], name="product_item_unique_feature"),
            models.CheckConstraint(condition=Q(included__gte=0), name="item_included_non_negative"),
            models.CheckConstraint(condition=Q(interval__in=Interval.values), name="item_interval_valid"),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="item_interval_count_positive"),
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(usage_limit__gte=0), name="item_usage_limit_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product}: {self.feature}"
