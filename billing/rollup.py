"""Daily usage per customer and feature (`DailyUsage`): kept by every event write, read by the graphs
and by events.aggregate (billing/usage_aggregate.py). Each day has the sum of its events' values and
how many events it adds up.

A customer with millions of events has hundreds of thousands in a graph's 30 days; summing them on
every view made the customer page linear in the customer's size. The rollup is added to in the same
transaction as the event (`add`, or the engine's store statement, billing/engine/store.py), so it is exact at
every commit, and a graph reads one row per feature and day.

`DailyCreditDraw` keeps, beside it, the credits each metered feature drew from each credit pool per day
(written by the same statement as the draw's events), so a pool's chart splits its usage without the events.

Days are calendar days in one time zone, recorded in `UsageRollup` (the deployment's TIME_ZONE when it
was built). `rebuild` recomputes everything from the events, in the current TIME_ZONE: after changing
TIME_ZONE (until then graphs sum the events instead), or after a bulk load of events.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.apps import apps as django_apps
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import UsageRollup
from customers.audit import SYSTEM, AuditAction, audit_record

# How an event is added to its day (here and in the engine's store statement, billing/engine/store.py).
ADD_ON_CONFLICT = (
    "ON CONFLICT (customer_id, day, feature_id) DO UPDATE SET value = billing_dailyusage.value + EXCLUDED.value, "
    "events = billing_dailyusage.events + EXCLUDED.events"
)
# How a draw's credits are added to the drawing feature's day (billing_dailycreditdraw, DailyCreditDraw).
ADD_DRAW_ON_CONFLICT = (
    "ON CONFLICT (customer_id, credit_system_id, day, feature_id) DO UPDATE "
    "SET value = billing_dailycreditdraw.value + EXCLUDED.value"
)
UPSERT_SQL = (
    "INSERT INTO billing_dailyusage (customer_id, feature_id, day, value, events) VALUES (%s, %s, %s, %s, 1) "
    + ADD_ON_CONFLICT
)


def zone():
    """The zone days are counted in when written: the deployment's TIME_ZONE."""
    return timezone.get_default_timezone()


def day_of(moment: datetime) -> date:
    return timezone.localtime(moment, zone()).date()


def add(*, customer_id: int, feature_id: int, moment: datetime, value: Decimal) -> None:
    """Count one event's value on its day. Call inside the transaction that writes the event."""
    with connection.cursor() as cursor:
        cursor.execute(UPSERT_SQL, [customer_id, feature_id, day_of(moment), value])


def zone_name_of(tz) -> str:
    return getattr(tz, "key", None) or str(tz)


def daily_sums(events, tz, *by: str):
    """Usage summed per `by` columns, feature and day in `tz`: rows of (*by, feature_id, local_day, total,
    count)."""
    return (
        events.filter(feature__isnull=False)
        .annotate(local_day=TruncDate("timestamp", tzinfo=tz))
        .values(*by, "feature_id", "local_day")
        .annotate(total=Sum("value"), count=Count("id"))
        .order_by()
    )


def rebuild(*, apps=None) -> int:
    """Recompute every customer's daily usage from the events, in TIME_ZONE (the zone tracks write in).
    Tracks that arrive meanwhile wait for the rebuild's commit, then add to the new rows. `apps`: a
    migration's historical models."""
    migrating = apps is not None
    apps = apps or django_apps
    DailyUsage, Event, UsageRollup = (
        apps.get_model("billing", name) for name in ("DailyUsage", "Event", "UsageRollup")
    )
    draws_kept = "dailycreditdraw" in {m._meta.model_name for m in apps.get_app_config("billing").get_models()}
    tz = zone()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Writers of the rollup queue behind this until it commits; readers go on.
            cursor.execute("LOCK TABLE billing_dailyusage IN EXCLUSIVE MODE")
            # Room to aggregate millions of events in memory rather than in spill files.
            cursor.execute("SET LOCAL work_mem = '256MB'")
        DailyUsage.objects.all().delete()
        # In the unique index's order, so that each insert lands beside the last one.
        rows = daily_sums(Event.objects.all(), tz, "customer_id").order_by("customer_id", "local_day", "feature_id")
        columns = "customer_id, feature_id, day, value, events"
        if not any(f.name == "events" for f in DailyUsage._meta.get_fields()):  # 0005's model, before 0008
            rows, columns = rows.values("customer_id", "feature_id", "local_day", "total"), columns[: -len(", events")]
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO billing_dailyusage ({columns}) {sql}", params)
            count = cursor.rowcount
        if draws_kept:  # from 0021 on
            rebuild_draws(zone_name_of(tz))
        state = UsageRollup.objects.select_for_update().order_by("pk").first() or UsageRollup()
        state.time_zone = zone_name_of(tz)
        state.rebuilt_at = timezone.now()
        state.save()
        if not migrating:  # a migration's fill is part of the schema change, not an operator's action
            audit_record(
                actor=SYSTEM,
                action=AuditAction.USAGE_REBUILD,
                target_type="usage",
                target_id=state.time_zone,
                after={"time_zone": state.time_zone, "rows": count},
            )
    return count


# Each draw (a credit system's event paying for a use) with its use's feature, summed per day. A draw and its
# use share one timestamp, so the join finds the use in the draw's own partition.
_DRAWS_SQL = """
INSERT INTO billing_dailycreditdraw (customer_id, credit_system_id, feature_id, day, value)
SELECT d.customer_id, d.feature_id, u.feature_id, (d."timestamp" AT TIME ZONE %s)::date, sum(d.value)
FROM billing_event d JOIN billing_event u ON u.id = d.drawn_for_id AND u."timestamp" = d."timestamp"
WHERE d.drawn_for_id IS NOT NULL AND d.feature_id IS NOT NULL AND u.feature_id IS NOT NULL
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 4, 3
"""


def rebuild_draws(zone_name: str) -> int:
    """Recompute every customer's daily credit draws per drawing feature from the events, in the zone named
    (inside `rebuild`'s transaction and lock, or migration 0021's)."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE billing_dailycreditdraw IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM billing_dailycreditdraw")
        cursor.execute(_DRAWS_SQL, [zone_name])
        return cursor.rowcount


def current_zone_name() -> str | None:
    """The zone the rollup counts days in now (None before it was ever built)."""

    return UsageRollup.objects.order_by("pk").values_list("time_zone", flat=True).first()
