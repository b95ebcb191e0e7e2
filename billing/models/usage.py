"""Usage: tracked events, their idempotency keys, and the daily rollup of them."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.features import (
    QUANTITY,
    Feature,
)
from customers.models import Customer


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


class DailyCreditDraw(models.Model):
    """Credits one metered feature drew from one credit system for one customer on one day (the days of
    `DailyUsage`): what a credit pool's chart splits its usage by. Written with the draw's events (the engine's
    store statement, billing/engine/store.py) and by `rollup.rebuild`. The pool's own `DailyUsage` counts
    these and whatever was tracked on the pool directly."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No indexes of their own (each costs every draw): the unique index below serves the chart.
    credit_system = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="+", db_index=False)
    feature = models.ForeignKey(
        Feature, on_delete=models.CASCADE, related_name="+", db_index=False, help_text="The drawing feature."
    )
    day = models.DateField()
    value = models.DecimalField(max_digits=32, decimal_places=6, default=Decimal(0), help_text="In credits.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "credit_system", "day", "feature"], name="dailycreditdraw_customer_pool_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.feature_id} drew {self.value} of {self.credit_system_id} on {self.day}"


class UsageRollup(models.Model):
    """One row: the time zone whose calendar days `DailyUsage` counts. Graphs shown in another zone
    (after TIME_ZONE changed, until `manage.py rebuild_usage_rollup`) sum the events instead."""

    time_zone = models.CharField(max_length=64)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Daily usage in {self.time_zone}"
