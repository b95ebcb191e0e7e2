"""The customer page's 30-day usage graphs: daily totals per feature (from the daily rollup, or the events),
the resets and manual edits marked on them, and each graph laid out as a small inline SVG."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property

from django.db import connections, router
from django.db.models import Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from billing import rollup
from billing.models import DailyCreditDraw, DailyUsage, Event, Feature
from billing.quantities import ZERO
from customers.audit import AuditAction
from customers.formatting import format_day, format_qty
from customers.models import AuditEntry, Customer

HISTORY_DAYS = 30
# A graph marks at most this many edits and resets; enough for a month of even a busy balance.
HISTORY_MARKS_LIMIT = 500
MARKED_ACTIONS = (AuditAction.BALANCE_RESET, AuditAction.BALANCE_SET, AuditAction.BALANCE_ADD)

# The history graph: 30 slots of 14 px, bars 10 px wide, room above them for the ▲ markers.
GRAPH_SLOT = 14
GRAPH_BAR = 10
GRAPH_TOP = 10
GRAPH_HEIGHT = 48


@dataclass
class DayBar:
    day: date
    value: Decimal
    x: int
    height: float
    label: str = ""  # the day as shown ("3 Nov 2026"): made once per page for all the graphs

    @property
    def title(self) -> str:
        return f"{self.label or format_day(self.day)}: {format_qty(self.value)} used"

    @property
    def bar_x(self) -> int:
        return self.x + (GRAPH_SLOT - GRAPH_BAR) // 2

    @property
    def bar_y(self) -> str:
        return f"{GRAPH_HEIGHT - self.height:.1f}"

    @property
    def bar_height(self) -> str:
        return f"{self.height:.1f}"


@dataclass
class Mark:
    """A reset (dashed line) or a manual edit (▲) on a history graph."""

    kind: str  # "reset" | "edit"
    day: date
    x: int = 0
    titles: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return "\n".join(self.titles)

    @property
    def center(self) -> int:
        return self.x + GRAPH_SLOT // 2

    @property
    def triangle(self) -> str:
        c = self.center
        return f"M{c - 4},{GRAPH_TOP - 1} L{c},1 L{c + 4},{GRAPH_TOP - 1} Z"


@dataclass
class UsageHistory:
    """Daily usage of one feature over the last days (`values`, from `first` on), laid out for a small
    inline SVG. The bars are laid out when first asked for (`days`): a graph whose row comes from the
    fragment cache is never drawn."""

    values: list[Decimal]
    first: date
    resets: list[Mark]
    edits: list[Mark]
    total: Decimal
    peak: Decimal
    feature_name: str = ""
    labels: list[str] = field(default_factory=list)  # each day as shown, shared by the page's graphs

    @cached_property
    def days(self) -> list[DayBar]:
        """A bar per day, scaled to the busiest day (a used day at least 1.5 px high)."""
        area = GRAPH_HEIGHT - GRAPH_TOP
        peak = float(self.peak)
        bars = []
        for i, value in enumerate(self.values):
            used = value > 0
            bars.append(
                DayBar(
                    day=self.first + timedelta(days=i),
                    value=value,
                    x=i * GRAPH_SLOT,
                    height=max(float(value) / peak * area, 1.5) if used else 0.0,
                    label=self.labels[i] if self.labels else "",
                )
            )
        return bars

    @property
    def width(self) -> int:
        return len(self.values) * GRAPH_SLOT

    @property
    def height(self) -> int:
        return GRAPH_HEIGHT

    @property
    def fingerprint(self) -> tuple:
        """Everything the graph shows (its bars, tooltips, marks and label): equal fingerprints, equal SVG."""
        return (
            self.feature_name,
            self.first,
            tuple(self.values),
            tuple((m.kind, m.day, tuple(m.titles)) for m in self.resets + self.edits),
        )

    @property
    def svg(self) -> str:
        """The graph's inline SVG, built here rather than in the template: a page with 50 metered
        features has 1,500 days. The bars are one path; each day is a group with its tooltip and a
        transparent hover area (its size is in the stylesheet: `.spark .day rect`)."""
        w, h = self.width, self.height
        label = (
            f"Daily usage of {self.feature_name} over the last {len(self.values)} days: "
            f"{format_qty(self.total)} in total, at most {format_qty(self.peak)} a day"
        )
        bars = "".join(f"M{d.bar_x} {h}V{d.bar_y}h{GRAPH_BAR}V{h}z" for d in self.days if d.height)
        parts = [
            f'<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{escape(label)}">',
            f'<line class="base" x1="0" x2="{w}" y1="{h}" y2="{h}"/>',
            f'<path class="bars" d="{bars}"/>' if bars else "",
        ]
        parts.extend(f'<g class="day"><title>{escape(d.title)}</title><rect x="{d.x}"/></g>' for d in self.days)
        for m in self.resets:
            parts.append(
                f'<g class="reset"><title>{escape(m.title)}</title><rect class="hit" x="{m.x - 3}" y="0" '
                f'width="6" height="{h}"/><line x1="{m.x}" x2="{m.x}" y1="0" y2="{h}"/></g>'
            )
        for m in self.edits:
            parts.append(f'<g class="edit"><title>{escape(m.title)}</title><path d="{m.triangle}"/></g>')
        parts.append("</svg>")
        return mark_safe("".join(parts))  # every interpolated text is escaped above


def _local_day(dt: datetime) -> date:
    return timezone.localtime(dt).date()


def _mark_title(entry: AuditEntry, feature_name: str, day: date) -> str:
    before, after = entry.before or {}, entry.after or {}
    when = format_day(day)
    if entry.action == AuditAction.BALANCE_RESET:
        return f"{when}: {feature_name} reset to {format_qty(after.get('remaining'))}"
    verb = "set" if entry.action == AuditAction.BALANCE_SET else "added to"
    text = (
        f"{when}: {entry.actor_label} {verb} {feature_name} "
        f"{format_qty(before.get('remaining'))} → {format_qty(after.get('remaining'))}"
    )
    return f"{text} · “{entry.reason}”" if entry.reason else text


def history_start(now: datetime, days: int = HISTORY_DAYS) -> datetime:
    """Midnight (local time) at the start of the first day a history graph shows."""
    first = _local_day(now) - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first, datetime.min.time()))


def balance_marks_query(customer: Customer, since: datetime) -> Q:
    """The audit entries a history graph marks: balance resets and manual edits since `since`."""
    return Q(customer=customer, target_type="balance", action__in=MARKED_ACTIONS, created_at__gte=since)


# The rollup's days, with the zone they are counted in: one query whether or not the customer has usage.
_DAILY_SQL = """
SELECT r.time_zone, d.feature_id, d.day, d.value FROM billing_usagerollup r
LEFT JOIN billing_dailyusage d ON d.customer_id = %s AND d.day >= %s
ORDER BY r.id
"""


def _daily_totals(customer: Customer, first: date, start: datetime) -> dict[int, dict[date, Decimal]]:
    """Usage per feature and local day from `first` on: from the daily rollup (billing/rollup.py), or,
    when it counts days in another zone than the one shown (TIME_ZONE changed and the rollup was not
    rebuilt yet), by summing the events."""
    tz = timezone.get_current_timezone()
    totals: dict[int, dict[date, Decimal]] = defaultdict(dict)
    # Raw SQL, so routed by hand: the replica on the dashboard's read-only pages (autumn_admin/dashboard/replica.py).
    with connections[router.db_for_read(DailyUsage)].cursor() as cursor:
        cursor.execute(_DAILY_SQL, [customer.pk, first])
        rows = cursor.fetchall()
    if rows and rows[0][0] == rollup.zone_name_of(tz):
        for _, feature_id, day, value in rows:
            if feature_id is not None:  # None: the zone's row alone, no usage since `first`
                totals[feature_id][day] = value
        return totals
    for row in rollup.daily_sums(Event.objects.filter(customer=customer, timestamp__gte=start), tz):
        totals[row["feature_id"]][row["local_day"]] = row["total"] or ZERO
    return totals


# The credits each feature drew from one pool per day, with the rollup's zone and the drawing features' names:
# one query however many features drew it.
_DRAWS_SQL = """
SELECT r.time_zone, f.id, f.feature_id, f.name, d.day, d.value FROM billing_usagerollup r
LEFT JOIN (billing_dailycreditdraw d JOIN billing_feature f ON f.id = d.feature_id)
       ON d.customer_id = %s AND d.credit_system_id = %s AND d.day >= %s
ORDER BY r.id, f.name, f.id, d.day
"""


@dataclass
class Drawer:
    """A feature that drew a credit pool, and the credits it drew per day."""

    pk: int
    feature_id: str
    name: str
    per_day: dict[date, Decimal] = field(default_factory=dict)


def credit_draws(customer: Customer, pool: Feature, *, days: int, now: datetime | None = None) -> list[Drawer]:
    """The features that drew `pool` (a credit system) for `customer` in the last `days` days, today included,
    each with its credits per local day (from `DailyCreditDraw`, or, when the rollup counts days in another zone,
    by summing the draws' events). Credits tracked on the pool directly are not among them."""
    now = now or timezone.now()
    start = history_start(now, days)
    first = _local_day(start)
    tz = timezone.get_current_timezone()
    drawers: dict[int, Drawer] = {}
    with connections[router.db_for_read(DailyCreditDraw)].cursor() as cursor:
        cursor.execute(_DRAWS_SQL, [customer.pk, pool.pk, first])
        rows = cursor.fetchall()
    if rows and rows[0][0] == rollup.zone_name_of(tz):
        for _, pk, feature_id, name, day, value in rows:
            if pk is not None:  # None: the zone's row alone, no draws since `first`
                drawers.setdefault(pk, Drawer(pk, feature_id, name)).per_day[day] = value
        return list(drawers.values())
    draws = (
        Event.objects.filter(customer=customer, feature=pool, drawn_for__isnull=False, timestamp__gte=start)
        .annotate(local_day=TruncDate("timestamp", tzinfo=tz))
        .values("drawn_for__feature_id", "drawn_for__feature__feature_id", "drawn_for__feature__name", "local_day")
        .annotate(total=Sum("value"))
        .order_by("drawn_for__feature__name", "drawn_for__feature_id", "local_day")
    )
    for row in draws:
        pk = row["drawn_for__feature_id"]
        if pk is not None:
            drawer = drawers.setdefault(
                pk, Drawer(pk, row["drawn_for__feature__feature_id"], row["drawn_for__feature__name"])
            )
            drawer.per_day[row["local_day"]] = row["total"] or ZERO
    return list(drawers.values())


def usage_history(
    customer: Customer,
    *,
    features: list[Feature] | None = None,
    days: int = HISTORY_DAYS,
    now: datetime | None = None,
    audit_entries: list[AuditEntry] | None = None,
) -> dict[int, UsageHistory]:
    """Daily usage per metered feature (keyed by feature pk) for the last `days` days, today included,
    with resets and manual balance edits marked. Two queries for all features: events summed per
    feature and day in SQL, and the balance audit entries of the period (none when the caller passes
    `audit_entries` it already read, newest first, that include them)."""
    now = now or timezone.now()
    start = history_start(now, days)
    first = _local_day(start)
    totals = _daily_totals(customer, first, start)
    entries = _marked_entries(customer, start, audit_entries)
    features = features if features is not None else []
    index_of = {first + timedelta(days=i): i for i in range(days)}
    marks = _marks(entries, {f.feature_id: f for f in features}, index_of)
    labels = [format_day(day) for day in index_of]  # the same days on every graph: formatted once
    result = {}
    for feature in features:
        if feature.is_metered:
            per_day = totals.get(feature.pk, {})
            values = [per_day.get(day, ZERO) for day in index_of]
            result[feature.pk] = _history(feature, values, first, marks.get(feature.pk, []), labels)
    return result


def _marked_entries(customer: Customer, start: datetime, audit_entries: list[AuditEntry] | None) -> list[AuditEntry]:
    """The balance resets and edits since `start`, newest first: picked from `audit_entries`, or read."""
    if audit_entries is None:
        return list(
            AuditEntry.objects.filter(balance_marks_query(customer, start)).order_by("-created_at", "-id")[
                :HISTORY_MARKS_LIMIT
            ]
        )
    return [
        e for e in audit_entries if e.target_type == "balance" and e.action in MARKED_ACTIONS and e.created_at >= start
    ]


def _mark_day(entry: AuditEntry, kind: str, index_of: dict[date, int]) -> date:
    """The day a mark stands on: the entry's, or for a lazy reset (recorded when the balance is next read)
    the day it fell due, when that day is shown."""
    day = _local_day(entry.created_at)
    if kind == "reset":
        scheduled = (entry.before or {}).get("next_reset_at")
        try:
            due_day = _local_day(datetime.fromisoformat(scheduled)) if scheduled else None
        except (TypeError, ValueError):
            due_day = None
        if due_day in index_of:
            day = due_day
    return day


def _marks(
    entries: list[AuditEntry], by_feature_id: dict[str, Feature], index_of: dict[date, int]
) -> dict[int, list[Mark]]:
    """The marks of the shown days per feature pk, in day order: one per kind and day, titled by every entry."""
    marks: dict[tuple[int, str, date], Mark] = {}
    for entry in reversed(entries):  # oldest first, so tooltips read in order
        feature_ref = (entry.after or {}).get("feature") or (entry.before or {}).get("feature")
        feature = by_feature_id.get(feature_ref)
        if feature is None:
            continue
        kind = "reset" if entry.action == AuditAction.BALANCE_RESET else "edit"
        day = _mark_day(entry, kind, index_of)
        if day not in index_of:
            continue
        mark = marks.setdefault((feature.pk, kind, day), Mark(kind=kind, day=day))
        mark.titles.append(_mark_title(entry, feature.name, day))
    per_feature: dict[int, list[Mark]] = defaultdict(list)
    for (feature_pk, _kind, day), mark in sorted(marks.items(), key=lambda kv: kv[0][2]):
        mark.x = index_of[day] * GRAPH_SLOT
        per_feature[feature_pk].append(mark)
    return per_feature


def _history(
    feature: Feature, values: list[Decimal], first: date, marks: list[Mark], labels: list[str]
) -> UsageHistory:
    """One feature's graph: its days' usage and marks (laid out as bars when drawn, `UsageHistory.days`)."""
    return UsageHistory(
        values=values,
        first=first,
        resets=[m for m in marks if m.kind == "reset"],
        edits=[m for m in marks if m.kind == "edit"],
        total=sum(values, ZERO),
        peak=max([v for v in values if v > 0], default=ZERO),
        feature_name=feature.name,
        labels=labels,
    )
