"""Usage over a time range, in bins of an hour, a day, a week or a month, optionally broken down by an
event property: what events.aggregate answers (the usage charts of an application built on Autumn).

Day, week and month bins of whole days, without a breakdown or a filter, add up the daily rollup
(billing/rollup.py): a few rows per feature and day, however many events the customer sends. Only
hour bins, a breakdown (`group_by`), a property filter, a range that does not start and end at
midnight, or days counted in another zone than the rollup's read the events themselves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Trunc
from django.utils import timezone

from billing import rollup
from billing.intervals import add_intervals, next_after
from billing.models import LIVE_PRODUCT_STATUSES, CustomerProduct, DailyUsage, Event, Feature
from billing.quantities import ZERO
from customers.errors import ServiceError
from customers.models import Customer

BIN_SIZES = ("hour", "day", "week", "month")
RANGE_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
CYCLE_RANGES = ("last_cycle", "1bc", "3bc")
MAX_BINS = 2400  # 100 days of hours
OTHER_GROUP = "Other"
NO_GROUP = "(none)"  # the group of an event without the grouped property


def _invalid(message: str, field_name: str) -> ServiceError:
    return ServiceError(message, code="invalid_inputs", field=field_name, status=422)


@dataclass(frozen=True)
class Window:
    """From `start` (the first bin's start) to `end` (exclusive), in bins of `bin_size` counted in `tz`."""

    start: datetime
    end: datetime
    bin_size: str
    tz: tzinfo

    def bin_of(self, moment: datetime) -> datetime:
        """The start of the bin that holds `moment`."""
        local = timezone.localtime(moment, self.tz)
        if self.bin_size == "hour":
            return local.replace(minute=0, second=0, microsecond=0)
        day = local.date()
        if self.bin_size == "week":
            day -= timedelta(days=day.weekday())  # weeks start on Monday
        elif self.bin_size == "month":
            day = day.replace(day=1)
        return self.midnight(day)

    def midnight(self, day: date) -> datetime:
        return timezone.make_aware(datetime.combine(day, datetime.min.time()), self.tz)

    def next_bin(self, bin_start: datetime) -> datetime:
        if self.bin_size == "hour":
            return timezone.localtime(bin_start + timedelta(hours=1), self.tz)
        day = timezone.localtime(bin_start, self.tz).date()
        if self.bin_size == "day":
            return self.midnight(day + timedelta(days=1))
        if self.bin_size == "week":
            return self.midnight(day + timedelta(days=7))
        return self.midnight((day.replace(day=28) + timedelta(days=4)).replace(day=1))

    def aligned(self) -> Window:
        """The window widened to whole bins: from the start of the first to the end of the last."""
        last = self.bin_of(self.end - timedelta(microseconds=1))
        return Window(start=self.bin_of(self.start), end=self.next_bin(last), bin_size=self.bin_size, tz=self.tz)

    def periods(self) -> list[datetime]:
        periods, current = [], self.bin_of(self.start)
        while current < self.end:
            periods.append(current)
            if len(periods) > MAX_BINS:
                raise _invalid(
                    f"That range has more than {MAX_BINS:,} {self.bin_size} bins: choose a larger bin_size.", "bin_size"
                )
            current = self.next_bin(current)
        return periods

    @property
    def whole_days(self) -> bool:
        """Do start and end fall on midnights of `tz`, with bins of a day or longer (what the rollup holds)?"""
        return self.bin_size != "hour" and all(
            timezone.localtime(m, self.tz).time() == datetime.min.time() for m in (self.start, self.end)
        )


def _cycle(customer: Customer, now: datetime) -> tuple[datetime, str, int]:
    """(the start of the current billing cycle, its interval, its count): the customer's main plan's
    period, by its recurring price (a month without one); from their start when it has no plan."""
    main = next(
        (
            cp
            for cp in CustomerProduct.objects.filter(customer=customer, status__in=LIVE_PRODUCT_STATUSES)
            .select_related("product")
            .prefetch_related("product__prices")
            .order_by("-started_at")
            if not cp.product.is_add_on
        ),
        None,
    )
    price = main.product.recurring_price if main else None
    interval, count = (price.interval, price.interval_count) if price else ("month", 1)
    anchor = (main.current_period_start or main.started_at) if main else customer.created_at
    if anchor > now:
        return anchor, interval, count
    end = next_after(anchor, interval, count, now)
    return add_intervals(end, interval, count, times=-1), interval, count


def window_for_range(
    range_name: str, *, bin_size: str | None, tz: tzinfo, now: datetime, customer: Customer | None
) -> Window:
    """A named range up to now: 24h (hour bins unless told), 7d, 30d, 90d (day bins, today the last), or
    billing cycles of the customer: 1bc (the current one), 3bc (it and the two before), last_cycle
    (the one before the current). Widened to whole bins, so the first and the last are complete."""
    if range_name in RANGE_DAYS:
        days = RANGE_DAYS[range_name]
        bin_size = bin_size or ("hour" if range_name == "24h" else "day")
        probe = Window(start=now, end=now, bin_size=bin_size, tz=tz)
        if bin_size == "hour":
            start = probe.bin_of(now) - timedelta(hours=24 * days - 1)
        else:
            start = probe.midnight(timezone.localtime(now, tz).date() - timedelta(days=days - 1))
        return Window(start=start, end=now, bin_size=bin_size, tz=tz).aligned()
    if customer is None:
        raise _invalid(f"range {range_name} is counted in the customer's billing cycles: give customer_id.", "range")
    current, interval, count = _cycle(customer, now)
    if range_name == "last_cycle":
        start, end = add_intervals(current, interval, count, times=-1), current
    else:
        start, end = add_intervals(current, interval, count, times=-2 if range_name == "3bc" else 0), now
    return Window(
        start=start, end=max(end, start + timedelta(microseconds=1)), bin_size=bin_size or "day", tz=tz
    ).aligned()


def window_for_custom(start: datetime, end: datetime, *, bin_size: str | None, tz: tzinfo) -> Window:
    if end <= start:
        raise _invalid("custom_range.end must be after custom_range.start.", "custom_range")
    bin_size = bin_size or "day"
    return Window(start=start, end=end, bin_size=bin_size, tz=tz)


@dataclass
class Aggregate:
    """Per feature (by pk): a value per period, optionally a {group: value} per period, and the range's
    total (how many events, and their sum)."""

    periods: list[datetime]
    values: dict[int, list[Decimal]]
    grouped: dict[int, list[dict[str, Decimal]]] | None
    totals: dict[int, tuple[int, Decimal]] = field(default_factory=dict)


def _of(customers: Customer | QuerySet[Customer]) -> dict:
    return {"customer": customers} if isinstance(customers, Customer) else {"customer__in": customers}


def _rows_from_rollup(customers: Customer | QuerySet[Customer], features: list[Feature], window: Window):
    """(feature pk, day start, count, sum) per feature and day, from the rollup."""
    rows = (
        DailyUsage.objects.filter(
            **_of(customers),
            feature__in=features,
            day__gte=timezone.localtime(window.start, window.tz).date(),
            day__lt=timezone.localtime(window.end, window.tz).date(),
        )
        .values("feature_id", "day")
        .annotate(count=Sum("events"), total=Sum("value"))
        .order_by()
    )
    for row in rows:
        yield row["feature_id"], window.midnight(row["day"]), row["count"] or 0, Decimal(row["total"] or 0), None


def _rows_from_events(
    customers: Customer | QuerySet[Customer],
    features: list[Feature],
    window: Window,
    group_by: str | None,
    filter_by: dict[str, str],
):
    """(feature pk, bin start, count, sum, group) per feature, bin (and group), summing the events."""
    events = Event.objects.filter(
        **_of(customers), feature__in=features, timestamp__gte=window.start, timestamp__lt=window.end
    )
    for n, (key, wanted) in enumerate(sorted(filter_by.items())):
        as_text = KeyTextTransform(key, "properties")  # ->>: the property as text, compared with the text wanted
        events = events.alias(**{f"filter_{n}": as_text}).filter(**{f"filter_{n}": wanted})
    by = ["feature_id", "bin"]
    if group_by == "$customer_id":
        events, by = events.annotate(group=F("customer__customer_id")), [*by, "group"]
    elif group_by:
        events, by = events.annotate(group=KeyTextTransform(group_by, "properties")), [*by, "group"]
    rows = (
        events.annotate(bin=Trunc("timestamp", window.bin_size, tzinfo=window.tz))
        .values(*by)
        .annotate(count=Count("id"), total=Sum("value"))
        .order_by()
    )
    for row in rows:
        group = row.get("group") if group_by else None
        if group_by and group is None:
            group = NO_GROUP
        yield row["feature_id"], window.bin_of(row["bin"]), row["count"], Decimal(row["total"] or 0), group


def _top_groups(rows, max_groups: int) -> set[str]:
    """The `max_groups` groups with the most usage over the range (all features together)."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for _, _, _, total, group in rows:
        sums[group] += abs(total)
    return set(sorted(sums, key=lambda g: (-sums[g], g))[:max_groups])


def usage_aggregate(
    *,
    customers: Customer | QuerySet[Customer],
    features: list[Feature],
    window: Window,
    group_by: str | None = None,
    filter_by: dict[str, str] | None = None,
    max_groups: int = 9,
    measure: str = "sum",
) -> Aggregate:
    """Usage of `features` by one customer (or the customers of a queryset) over `window`: from the
    rollup where it holds the answer, else from the events. `measure` "count" bins how many events
    rather than their sum; group_by is an event property's name, or "$customer_id"."""
    filter_by = filter_by or {}
    periods = window.periods()
    if (
        group_by is None
        and not filter_by
        and window.whole_days
        and rollup.current_zone_name() == (rollup.zone_name_of(window.tz))
    ):
        rows = list(_rows_from_rollup(customers, features, window))
        if window.bin_size != "day":
            rows = [(f, window.bin_of(day), c, t, g) for f, day, c, t, g in rows]
    else:
        rows = list(_rows_from_events(customers, features, window, group_by, filter_by))
    index = {p: i for i, p in enumerate(periods)}
    values = {f.pk: [ZERO] * len(periods) for f in features}
    grouped = {f.pk: [{} for _ in periods] for f in features} if group_by else None
    totals: dict[int, tuple[int, Decimal]] = {f.pk: (0, ZERO) for f in features}
    top = _top_groups(rows, max_groups) if group_by else set()
    for feature_pk, period, count, total, group in rows:
        i = index.get(period)
        if i is None:  # cannot happen for rows inside the window; kept safe against zone edge cases
            continue
        amount = Decimal(count) if measure == "count" else total
        values[feature_pk][i] += amount
        n, s = totals[feature_pk]
        totals[feature_pk] = (n + count, s + total)
        if grouped is not None:
            name = group if group in top else OTHER_GROUP
            grouped[feature_pk][i][name] = grouped[feature_pk][i].get(name, ZERO) + amount
    return Aggregate(periods=periods, values=values, grouped=grouped, totals=totals)
