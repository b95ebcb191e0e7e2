from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from billing.intervals import add_intervals
from billing.quantities import overage
from customers.models import Customer, Env

SLUG_PATTERN = r"^[a-zA-Z0-9_-]+$"

# Quantities: up to 10^15 with 6 decimals (fractional credits exist).
QUANTITY = {"max_digits": 22, "decimal_places": 6}


class FeatureType(models.TextChoices):
    BOOLEAN = "boolean", "Boolean"
    METERED = "metered", "Metered"
    CREDIT_SYSTEM = "credit_system", "Credit system"


class UsageType(models.TextChoices):
    SINGLE_USE = "single_use", "Single use (consumed, resets)"
    CONTINUOUS_USE = "continuous_use", "Continuous use (allocated, never resets)"


class Interval(models.TextChoices):
    LIFETIME = "lifetime", "Lifetime"
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"
    SEMI_ANNUAL = "semi_annual", "Half year"
    YEAR = "year", "Year"


class PriceInterval(models.TextChoices):
    ONE_OFF = "one_off", "One-off"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"
    SEMI_ANNUAL = "semi_annual", "Half year"
    YEAR = "year", "Year"


class Feature(models.Model):
    feature_id = models.CharField("ID", max_length=255, unique=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=FeatureType.choices)
    usage_type = models.CharField(
        max_length=16,
        choices=UsageType.choices,
        blank=True,
        default="",
        help_text="For metered features: consumed each interval or allocated (seats).",
    )
    event_names = models.JSONField(
        default=list, blank=True, help_text="Event names that count towards this feature when tracked."
    )
    unit_label = models.CharField(max_length=32, blank=True, default="")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(feature_id__regex=SLUG_PATTERN), name="feature_id_pattern"),
            models.CheckConstraint(condition=Q(type__in=FeatureType.values), name="feature_type_valid"),
            models.CheckConstraint(
                condition=Q(usage_type__in=[*UsageType.values, ""]), name="feature_usage_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_metered(self) -> bool:
        return self.type != FeatureType.BOOLEAN


class CreditCost(models.Model):
    """One line of a credit system's schema: what one unit of a metered feature costs in credits.

    Tracking the metered feature draws first from the customer's own balance of it, then from the
    credit system's pool at this cost (Autumn's order)."""

    credit_system = models.ForeignKey(
        Feature,
        on_delete=models.CASCADE,
        related_name="credit_schema",
        limit_choices_to={"type": FeatureType.CREDIT_SYSTEM},
    )
    metered_feature = models.ForeignKey(
        Feature,
        on_delete=models.CASCADE,
        related_name="credit_costs",
        limit_choices_to={"type": FeatureType.METERED},
    )
    credit_cost = models.DecimalField(**QUANTITY, help_text="Credits drawn per unit of the metered feature.")

    class Meta:
        ordering = ["credit_system_id", "metered_feature_id"]
        constraints = [
            models.UniqueConstraint(fields=["credit_system", "metered_feature"], name="credit_cost_unique"),
            models.CheckConstraint(condition=Q(credit_cost__gt=0), name="credit_cost_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.metered_feature_id} × {self.credit_cost} → {self.credit_system_id}"

    def clean(self) -> None:
        """The schema's rules, for every form that edits a line (the admin's inline among them): a
        credit system lists metered features only, never itself, each at a cost above 0."""
        errors = {}
        system, metered = self._feature("credit_system"), self._feature("metered_feature")
        if system is not None and system.type != FeatureType.CREDIT_SYSTEM:
            errors["credit_system"] = f"{system.name} is not a credit system."
        if metered is not None and system is not None and (metered is system or metered.pk == system.pk):
            errors["metered_feature"] = "A credit system can't draw from itself."
        elif metered is not None and metered.type != FeatureType.METERED:
            errors["metered_feature"] = f"{metered.name} is not a metered feature: only metered features draw credits."
        if self.credit_cost is not None and self.credit_cost <= 0:
            errors["credit_cost"] = "A credit cost must be more than 0."
        if errors:
            raise ValidationError(errors)

    def _feature(self, name: str) -> Feature | None:
        """The feature a field names, saved or not (an inline's parent on its add page is not yet saved)."""
        try:
            return getattr(self, name)
        except Feature.DoesNotExist:
            return None


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
        """The per-unit price of usage beyond the allowance of one feature, or None."""
        return next((p for p in self.prices.all() if p.type == Price.Type.USAGE and p.feature_id == feature_id), None)

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
                condition=Q(customer_product__isnull=False),
                name="balance_one_per_product_feature",
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


class Event(models.Model):
    """One tracked usage event. A use is recorded in full even where the balance is capped; a refund only
    as far as it gave usage back (never more than was used)."""

    # No index of its own: the (customer, …) indexes below start with it, and each index costs every track.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events", db_index=False)
    feature = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    event_name = models.CharField(max_length=255, blank=True, default="")
    value = models.DecimalField(**QUANTITY, default=Decimal(1))
    timestamp = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    api_key = models.ForeignKey("customers.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    drawn_for = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="credit_draws",
        db_index=False,  # indexed only where set (below): a plain track writes no index entry for it
        # No database constraint: on PostgreSQL the events are partitioned by month, and a foreign key to a
        # partitioned table needs a unique key on `id` alone, which partitions can't have. The ORM still
        # deletes the draws with their use, and both share one timestamp, so they live in one partition.
        db_constraint=False,
        help_text="On a credit system's event: the tracked event whose use these credits paid for.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # On PostgreSQL the table is partitioned by month of `timestamp` (billing/partitions.py): its primary
        # key there is (id, timestamp), and the per-customer uniqueness of `idempotency_key`, which no
        # unique index across partitions can hold, is kept by EventIdempotencyKey.
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["customer", "feature", "-timestamp", "-id"], name="event_cus_feat_time"),
            models.Index(fields=["customer", "-timestamp", "-id"], name="event_customer_time"),
            models.Index(fields=["drawn_for"], condition=Q(drawn_for__isnull=False), name="event_drawn_for"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.event_name or self.feature_id} {self.value}"


class EventIdempotencyKey(models.Model):
    """One customer's idempotency key of an event, unique per customer: a retried track with the same key
    finds its event here instead of writing another. Unpartitioned, beside the partitioned events,
    written in the event's transaction (billing/engine/store.py); removed with the event's month by
    `manage.py event_retention`."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    idempotency_key = models.CharField(max_length=255)
    event_id = models.BigIntegerField()
    event_timestamp = models.DateTimeField(help_text="The event's partition key: finds it in one partition.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "idempotency_key"], name="event_idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.idempotency_key}"

    def event(self) -> Event:
        return Event.objects.get(pk=self.event_id, timestamp=self.event_timestamp)


class DailyUsage(models.Model):
    """Usage of one feature by one customer on one day (in the time zone named by `UsageRollup`):
    what the usage graphs and events.aggregate read, with how many events it adds up. Written in the
    same transaction as each event (billing/rollup.py), so a graph reads ~30 rows per feature however
    many events the customer sends."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    # Wider than an event's value: a day adds up many of them.
    value = models.DecimalField(max_digits=32, decimal_places=6, default=Decimal(0))
    events = models.PositiveBigIntegerField(default=0, db_default=0, help_text="How many events the day adds up.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "day", "feature"], name="dailyusage_customer_day_feature"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.feature_id} on {self.day}: {self.value}"


class UsageRollup(models.Model):
    """One row: the time zone whose calendar days `DailyUsage` counts. Graphs shown in another zone
    (after TIME_ZONE changed, until `manage.py rebuild_usage_rollup`) sum the events instead."""

    time_zone = models.CharField(max_length=64)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Daily usage in {self.time_zone}"


class RewardType(models.TextChoices):
    PERCENTAGE_DISCOUNT = "percentage_discount", "Percentage discount"
    FIXED_DISCOUNT = "fixed_discount", "Fixed discount"
    FREE_PRODUCT = "free_product", "Free product"
    FEATURE_GRANT = "feature_grant", "Feature grant"


DISCOUNT_REWARD_TYPES = (RewardType.PERCENTAGE_DISCOUNT, RewardType.FIXED_DISCOUNT)


class RewardDuration(models.TextChoices):
    ONE_OFF = "one_off", "Once"
    MONTHS = "months", "Months"
    FOREVER = "forever", "Forever"


class Reward(models.Model):
    reward_id = models.CharField("ID", max_length=255, unique=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=24, choices=RewardType.choices)
    value = models.DecimalField(
        **QUANTITY,
        default=Decimal(0),
        help_text="Percent off for a percentage discount; minor units off for a fixed one; units for a grant.",
    )
    currency = models.CharField(max_length=3, default="usd")
    duration = models.CharField(max_length=8, choices=RewardDuration.choices, default=RewardDuration.ONE_OFF)
    duration_months = models.PositiveSmallIntegerField(null=True, blank=True)
    promo_codes = models.JSONField(default=list, blank=True)
    free_product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    grant_feature = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stripe_coupon_id = models.CharField(
        "Stripe test-mode coupon",
        max_length=255,
        blank=True,
        default="",
        help_text="The coupon standing for it in Stripe's test mode, for sandbox customers.",
    )
    stripe_live_coupon_id = models.CharField(
        "Stripe live-mode coupon",
        max_length=255,
        blank=True,
        default="",
        help_text="The coupon standing for it in Stripe's live mode, for live customers.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(reward_id__regex=SLUG_PATTERN), name="reward_id_pattern"),
            models.CheckConstraint(condition=Q(type__in=RewardType.values), name="reward_type_valid"),
            models.CheckConstraint(condition=Q(duration__in=RewardDuration.values), name="reward_duration_valid"),
            models.CheckConstraint(condition=Q(value__gte=0), name="reward_value_non_negative"),
            models.CheckConstraint(
                condition=~Q(type="percentage_discount") | Q(value__lte=100), name="reward_percentage_max_100"
            ),
            models.CheckConstraint(
                condition=~Q(duration="months") | Q(duration_months__gte=1), name="reward_months_needs_count"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_discount(self) -> bool:
        return self.type in DISCOUNT_REWARD_TYPES


class CustomerReward(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="customer_rewards")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="customer_rewards")
    applied_at = models.DateTimeField(default=timezone.now)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until removed (or used once).")
    removed_at = models.DateTimeField(null=True, blank=True)
    stripe_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-applied_at", "-id"]
        permissions = [("apply_reward", "Can add and remove a customer's rewards")]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "reward"],
                condition=Q(removed_at__isnull=True),
                name="customer_reward_unique_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.reward}"


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


class BulkJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class BulkJob(models.Model):
    """One bulk action over a selection of an environment's customers, run in the background. Its items are
    the customers it was started on; each is done, skipped or failed exactly once (`BulkJobItem`)."""

    env = models.CharField(max_length=8, choices=Env.choices)
    action = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True, help_text="The action's inputs (feature, amount, ...).")
    reason = models.TextField()
    filter_query = models.CharField(max_length=2000, blank=True, default="", help_text="The list's filters.")
    filter_text = models.CharField(max_length=2000, blank=True, default="", help_text="The filters in words.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=BulkJobStatus.choices, default=BulkJobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of its worker.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["env", "-created_at"], name="bulkjob_env_time")]

    def __str__(self) -> str:
        return f"Job {self.pk}: {self.action} ({self.status})"

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def left(self) -> int:
        return max(0, self.total - self.processed)

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.processed * 100 // self.total

    @property
    def is_finished(self) -> bool:
        return self.status in (BulkJobStatus.DONE, BulkJobStatus.CANCELLED)


class BulkJobItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class BulkJobItem(models.Model):
    """One customer of a job. Its status moves from pending in the same transaction as the customer's change,
    so a job run again after a crash skips what is done and redoes what was not."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL, related_name="+")
    customer_ref = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=8, choices=BulkJobItemStatus.choices, default=BulkJobItemStatus.PENDING)
    reason = models.CharField(max_length=500, blank=True, default="", help_text="Why it was skipped or failed.")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "customer"], name="bulkjobitem_once_per_customer")]
        indexes = [models.Index(fields=["job", "status", "id"], name="bulkjobitem_job_status")]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.customer_ref}: {self.status}"
