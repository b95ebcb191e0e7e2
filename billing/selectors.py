"""Reads of a customer's billing: products, feature balances, usage history, invoices, events and
the upcoming invoice. Each function runs a fixed number of queries, whatever the amount of data,
and pages in SQL, so the customer page stays fast for the biggest customers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import BadRequest
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from billing import rollup
from billing.intervals import next_after
from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    CustomerReward,
    Event,
    Feature,
    FeatureType,
    Interval,
    Invoice,
    Price,
    ProductItem,
    RewardDuration,
    RewardType,
)
from billing.money import billable_units, format_money, round_minor
from billing.services.balances import FeatureBalance, balances_reset_due
from customers.audit import AuditAction
from customers.formatting import format_day, format_qty
from customers.models import AuditEntry, Customer
from customers.paging import InvalidCursor, Page, keyset_page

ZERO = Decimal(0)
HISTORY_DAYS = 30
EVENTS_PAGE_SIZE = 25
INVOICES_PAGE_SIZE = 10
# A graph marks at most this many edits and resets; enough for a month of even a busy balance.
HISTORY_MARKS_LIMIT = 500
MARKED_ACTIONS = (AuditAction.BALANCE_RESET, AuditAction.BALANCE_SET, AuditAction.BALANCE_ADD)

STATUS_ORDER = {
    CustomerProductStatus.PAST_DUE: 0,
    CustomerProductStatus.ACTIVE: 1,
    CustomerProductStatus.TRIALING: 2,
    CustomerProductStatus.SCHEDULED: 3,
    CustomerProductStatus.EXPIRED: 4,
}
INTERVAL_WORDS = {
    "day": ("day", "days"),
    "week": ("week", "weeks"),
    "month": ("month", "months"),
    "quarter": ("quarter", "quarters"),
    "semi_annual": ("half year", "half years"),
    "year": ("year", "years"),
}
PRICE_CADENCE = {"month": "monthly", "quarter": "quarterly", "semi_annual": "every 6 months", "year": "yearly"}


def per_interval(interval: str, count: int = 1) -> str:
    """ "/ month", "/ 3 months", or "" for a lifetime allowance."""
    if interval == Interval.LIFETIME or interval not in INTERVAL_WORDS:
        return ""
    one, many = INTERVAL_WORDS[interval]
    return f"/ {one}" if count == 1 else f"/ {count} {many}"


def cadence(interval: str, count: int = 1) -> str:
    if interval == "one_off":
        return "one-off"
    if count == 1 and interval in PRICE_CADENCE:
        return PRICE_CADENCE[interval]
    one, many = INTERVAL_WORDS.get(interval, (interval, interval))
    return f"every {count} {many}" if count != 1 else f"every {one}"


# --- products ------------------------------------------------------------------------------------


@dataclass
class Limit:
    """One feature a product includes, as the customer gets it."""

    feature: Feature
    amount: Decimal | None
    unlimited: bool
    interval_text: str
    overage_allowed: bool

    @property
    def is_boolean(self) -> bool:
        return self.feature.type == FeatureType.BOOLEAN


@dataclass
class ProductRow:
    cp: CustomerProduct
    limits: list[Limit]

    @property
    def is_live(self) -> bool:
        return self.cp.status in LIVE_PRODUCT_STATUSES


def customer_products(customer: Customer) -> list[CustomerProduct]:
    """Every product the customer has had, with items and prices: 3 queries."""
    return list(
        CustomerProduct.objects.filter(customer=customer)
        .select_related("product")
        .prefetch_related(
            Prefetch("product__items", queryset=ProductItem.objects.select_related("feature").order_by("id")),
            Prefetch("product__prices", queryset=Price.objects.select_related("feature").order_by("id")),
        )
    )


def product_rows(cps: list[CustomerProduct]) -> list[ProductRow]:
    """Live products first (past due on top, it needs attention; plans before add-ons), then
    scheduled, then ended ones."""
    rows = []
    for cp in cps:
        limits = [
            Limit(
                feature=item.feature,
                amount=None if item.unlimited else item.included * cp.quantity,
                unlimited=item.unlimited,
                interval_text=per_interval(item.interval, item.interval_count),
                overage_allowed=item.overage_allowed,
            )
            for item in cp.product.items.all()
        ]
        rows.append(ProductRow(cp=cp, limits=limits))
    rows.sort(
        key=lambda r: (STATUS_ORDER.get(r.cp.status, 9), r.cp.product.is_add_on, -r.cp.started_at.timestamp(), -r.cp.pk)
    )
    return rows


# --- balances and their history ------------------------------------------------------------------


def _balances_query(customer: Customer) -> QuerySet[Balance]:
    return Balance.objects.filter(customer=customer).select_related("feature", "customer_product__product")


def customer_balances(customer: Customer, *, now: datetime | None = None) -> list[Balance]:
    """The customer's balances, after any reset that has fallen due (lazy resets).

    The due check runs on the rows just read, so a page with nothing to reset pays no extra query;
    the reset itself is the balance engine's, as for every other reader.
    """
    now = now or timezone.now()
    balances = list(_balances_query(customer))
    due = any(b.is_due(now) for b in balances)
    if due and balances_reset_due(customer=customer, now=now):
        balances = list(_balances_query(customer))
    return balances


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

    @property
    def title(self) -> str:
        return f"{format_day(self.day)}: {format_qty(self.value)} used"

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
    """Daily usage of one feature over the last days, laid out for a small inline SVG."""

    days: list[DayBar]
    resets: list[Mark]
    edits: list[Mark]
    total: Decimal
    peak: Decimal
    feature_name: str = ""

    @property
    def width(self) -> int:
        return len(self.days) * GRAPH_SLOT

    @property
    def height(self) -> int:
        return GRAPH_HEIGHT

    @property
    def slot(self) -> int:
        return GRAPH_SLOT

    @property
    def bar_width(self) -> int:
        return GRAPH_BAR

    @property
    def svg(self) -> str:
        """The graph's inline SVG, built here rather than in the template: a page with 50 metered
        features has 1,500 day bars, and rendering them node by node dominated the page's time."""
        w, h = self.width, self.height
        label = (
            f"Daily usage of {self.feature_name} over the last {len(self.days)} days: "
            f"{format_qty(self.total)} in total, at most {format_qty(self.peak)} a day"
        )
        parts = [
            f'<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{escape(label)}">\n',
            f'            <line class="base" x1="0" x2="{w}" y1="{h}" y2="{h}"/>\n            ',
        ]
        for d in self.days:
            bar = (
                f'<rect class="bar" x="{d.bar_x}" y="{d.bar_y}" width="{GRAPH_BAR}" height="{d.bar_height}"/>'
                if d.height
                else ""
            )
            parts.append(
                f'<g class="day"><title>{escape(d.title)}</title><rect class="hit" x="{d.x}" y="0" '
                f'width="{GRAPH_SLOT}" height="{h}"/>{bar}</g>'
            )
        parts.append("\n            ")
        for m in self.resets:
            parts.append(
                f'<g class="reset"><title>{escape(m.title)}</title><rect class="hit" x="{m.x - 3}" y="0" '
                f'width="6" height="{h}"/><line x1="{m.x}" x2="{m.x}" y1="0" y2="{h}"/></g>'
            )
        parts.append("\n            ")
        for m in self.edits:
            parts.append(f'<g class="edit"><title>{escape(m.title)}</title><path d="{m.triangle}"/></g>')
        parts.append("\n          </svg>")
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


QUANTUM = Decimal("0.000001")

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
    with connection.cursor() as cursor:
        cursor.execute(_DAILY_SQL, [customer.pk, first])
        rows = cursor.fetchall()
    if rows and rows[0][0] == rollup.zone_name_of(tz):
        for _, feature_id, day, value in rows:
            if feature_id is not None:  # None: the zone's row alone, no usage since `first`
                if not isinstance(value, Decimal):  # SQLite adds in floating point: back to 6 decimals
                    value = Decimal(str(value)).quantize(QUANTUM)
                totals[feature_id][day if isinstance(day, date) else date.fromisoformat(day)] = value
        return totals
    for row in rollup.daily_sums(Event.objects.filter(customer=customer, timestamp__gte=start), tz):
        day = row["local_day"]
        if isinstance(day, datetime):
            day = day.date()
        totals[row["feature_id"]][day] = row["total"] or ZERO
    return totals


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

    if audit_entries is None:
        entries = list(
            AuditEntry.objects.filter(balance_marks_query(customer, start)).order_by("-created_at", "-id")[
                :HISTORY_MARKS_LIMIT
            ]
        )
    else:
        entries = [
            e
            for e in audit_entries
            if e.target_type == "balance" and e.action in MARKED_ACTIONS and e.created_at >= start
        ]
    features = features if features is not None else []
    by_feature_id = {f.feature_id: f for f in features}
    wanted = {f.pk for f in features if f.is_metered}
    names = {f.pk: f.name for f in features}
    index_of = {first + timedelta(days=i): i for i in range(days)}

    marks: dict[tuple[int, str, date], Mark] = {}
    for entry in reversed(entries):  # oldest first, so tooltips read in order
        feature_ref = (entry.after or {}).get("feature") or (entry.before or {}).get("feature")
        feature = by_feature_id.get(feature_ref)
        if feature is None:
            continue
        kind = "reset" if entry.action == AuditAction.BALANCE_RESET else "edit"
        day = _local_day(entry.created_at)
        if kind == "reset":
            # A lazy reset is recorded when the balance is next read: place it when it fell due.
            scheduled = (entry.before or {}).get("next_reset_at")
            try:
                due_day = _local_day(datetime.fromisoformat(scheduled)) if scheduled else None
            except (TypeError, ValueError):
                due_day = None
            if due_day in index_of:
                day = due_day
        if day not in index_of:
            continue
        mark = marks.setdefault((feature.pk, kind, day), Mark(kind=kind, day=day))
        mark.titles.append(_mark_title(entry, feature.name, day))

    result = {}
    for feature_pk in wanted:
        per_day = totals.get(feature_pk, {})
        values = [per_day.get(first + timedelta(days=i), ZERO) for i in range(days)]
        peak = max([v for v in values if v > 0], default=ZERO)
        area = GRAPH_HEIGHT - GRAPH_TOP
        bars = []
        for i, value in enumerate(values):
            height = float(value / peak * area) if peak > 0 and value > 0 else 0.0
            bars.append(
                DayBar(
                    day=first + timedelta(days=i),
                    value=value,
                    x=i * GRAPH_SLOT,
                    height=max(height, 1.5) if value > 0 else 0.0,
                )
            )
        resets, edits = [], []
        for (pk, kind, day), mark in sorted(marks.items(), key=lambda kv: kv[0][2]):
            if pk != feature_pk:
                continue
            mark.x = index_of[day] * GRAPH_SLOT
            (resets if kind == "reset" else edits).append(mark)
        result[feature_pk] = UsageHistory(
            days=bars,
            resets=resets,
            edits=edits,
            total=sum(values, ZERO),
            peak=peak,
            feature_name=names.get(feature_pk, ""),
        )
    return result


@dataclass
class FeatureRow(FeatureBalance):
    """One row of Available Features: every balance the customer has of one feature, added up."""

    history: UsageHistory | None = None

    @property
    def feature_id(self) -> str:
        return self.feature.feature_id

    @property
    def is_boolean(self) -> bool:
        return self.feature.type == FeatureType.BOOLEAN

    @property
    def editable(self) -> bool:
        """Boolean and unlimited balances have no number to edit."""
        return not self.is_boolean and not self.unlimited

    @property
    def primary(self) -> Balance:
        """The balance an edit of the row changes: the first grant (the plan's, usually)."""
        return self.balances[0]

    @property
    def sources(self) -> list[str]:
        names = []
        for b in self.balances:
            name = str(b.customer_product.product) if b.customer_product_id else "Granted"
            if name not in names:
                names.append(name)
        return names

    @property
    def resets(self) -> bool:
        return any(b.resets for b in self.balances)

    @property
    def overage(self) -> Decimal:
        return max(ZERO, -self.remaining)

    @property
    def usage_percent(self) -> int:
        """How full the usage bar is."""
        if self.unlimited or self.is_boolean:
            return 0
        if self.granted <= 0:
            return 100 if self.usage > 0 else 0
        return max(0, min(100, round(self.usage / self.granted * 100)))

    @property
    def level(self) -> str:
        """How worried to look: "over" past the allowance, "high" at 90 %, else "ok"."""
        if self.remaining < 0:
            return "over"
        if self.usage_percent >= 90:
            return "high"
        return "ok"


def feature_rows(balances: list[Balance], history: dict[int, UsageHistory] | None = None) -> list[FeatureRow]:
    """Metered features first, then boolean ones; alphabetical within each."""
    grouped: dict[int, list[Balance]] = defaultdict(list)
    for b in sorted(balances, key=lambda b: b.pk):
        grouped[b.feature_id].append(b)
    rows = []
    for group in grouped.values():
        row = FeatureRow.of(group[0].feature, group)
        row.history = (history or {}).get(group[0].feature_id)
        rows.append(row)
    rows.sort(key=lambda r: (r.is_boolean, r.feature.name.lower()))
    return rows


# --- paging (keyset on time and id, newest first: customers/paging.py) ------------------------


def _keyset_page(qs: QuerySet, *, time_field: str, before: str | None, limit: int, name: str) -> Page:
    """A malformed cursor is the client's mistake (400), not ours."""
    try:
        return keyset_page(qs, time_field=time_field, cursor=before, limit=limit)
    except InvalidCursor as exc:
        raise BadRequest(f"The {name} paging cursor {str(exc)!r} is not valid.")


def events_page(
    customer: Customer, *, before: str | None = None, feature_id: str | None = None, limit: int = EVENTS_PAGE_SIZE
) -> Page:
    qs = Event.objects.filter(customer=customer).select_related("feature")
    if feature_id and "\x00" in feature_id:
        qs = qs.none()  # no feature id has a NUL, and PostgreSQL refuses to compare with one
    elif feature_id:
        qs = qs.filter(feature__feature_id=feature_id)
    return _keyset_page(qs, time_field="timestamp", before=before, limit=limit, name="events")


def invoices_page(customer: Customer, *, before: str | None = None, limit: int = INVOICES_PAGE_SIZE) -> Page:
    qs = Invoice.objects.filter(customer=customer)
    return _keyset_page(qs, time_field="created_at", before=before, limit=limit, name="invoices")


# --- rewards -------------------------------------------------------------------------------------


@dataclass
class RewardRow:
    applied: CustomerReward
    now: datetime

    @property
    def reward(self):
        return self.applied.reward

    @property
    def expired(self) -> bool:
        return self.applied.expires_at is not None and self.applied.expires_at <= self.now

    @property
    def summary(self) -> str:
        """ "20% off", "$10.00 off", "Free Pro", "+500 Messages"."""
        r = self.reward
        if r.type == RewardType.PERCENTAGE_DISCOUNT:
            return f"{format_qty(r.value)}% off"
        if r.type == RewardType.FIXED_DISCOUNT:
            return f"{format_money(r.value, r.currency)} off"
        if r.type == RewardType.FREE_PRODUCT:
            return f"Free {r.free_product.name}" if r.free_product_id else "Free product"
        if r.type == RewardType.FEATURE_GRANT:
            name = r.grant_feature.name if r.grant_feature_id else "units"
            return f"+{format_qty(r.value)} {name}"
        return r.get_type_display()

    @property
    def duration(self) -> str:
        r = self.reward
        if r.duration == RewardDuration.ONE_OFF:
            return "once"
        if r.duration == RewardDuration.FOREVER:
            return "forever"
        months = r.duration_months or 0
        return f"{months} month{'s' if months != 1 else ''}"


def customer_rewards(customer: Customer, *, now: datetime | None = None) -> list[RewardRow]:
    """Coupons the customer has (not removed), newest first; expired ones stay visible, marked."""
    now = now or timezone.now()
    applied = (
        CustomerReward.objects.filter(customer=customer, removed_at__isnull=True)
        .select_related("reward__free_product", "reward__grant_feature", "applied_by")
        .order_by("-applied_at", "-id")
    )
    return [RewardRow(applied=a, now=now) for a in applied]


# --- the upcoming invoice -----------------------------------------------------------------------


def _next_billing_date(cp: CustomerProduct, now: datetime) -> datetime | None:
    """When the product next bills: its current period end, moved on by whole billing intervals
    when that date has passed without the period being renewed (no Stripe sync yet, say)."""
    end = cp.current_period_end or cp.trial_ends_at
    if end is None or end > now:
        return end
    recurring = cp.product.recurring_price
    if recurring is None:
        return end
    return next_after(end, recurring.interval, recurring.interval_count, now)


@dataclass
class InvoiceLine:
    kind: str  # "fixed" | "overage" | "discount"
    description: str
    detail: str
    amount: int  # minor units; negative for a discount
    currency: str


@dataclass
class UpcomingInvoice:
    lines: list[InvoiceLine]
    currency: str
    date: datetime | None
    subtotal: int
    total: int
    mixed_currencies: bool = False

    @property
    def discount(self) -> int:
        return self.total - self.subtotal


def upcoming_invoice(
    customer: Customer,
    *,
    cps: list[CustomerProduct] | None = None,
    balances: list[Balance] | None = None,
    rewards: list[RewardRow] | None = None,
    remaining_overrides: dict[int, Decimal] | None = None,
    now: datetime | None = None,
) -> UpcomingInvoice:
    """What the next invoice will charge: the fixed prices of the live products, the overage of
    negative balances (where overage is allowed, at the product's usage price per billing units;
    a balance not in overage gets no line),
    less the discounts of the customer's active coupons. Itemised; dated at the earliest period end.

    Pass what the page already loaded to avoid reading it twice. `remaining_overrides` shows the
    invoice as it would be with some balances at another value ({balance pk: remaining}).
    """
    now = now or timezone.now()
    cps = customer_products(customer) if cps is None else cps
    balances = customer_balances(customer, now=now) if balances is None else balances
    rewards = customer_rewards(customer, now=now) if rewards is None else rewards
    overrides = remaining_overrides or {}

    live = [cp for cp in cps if cp.status in LIVE_PRODUCT_STATUSES]
    lines: list[InvoiceLine] = []
    for cp in sorted(live, key=lambda cp: (cp.product.is_add_on, cp.started_at, cp.pk)):
        for price in cp.product.prices.all():
            if not price.is_recurring:
                continue
            detail = cadence(price.interval, price.interval_count)
            if cp.quantity > 1:
                detail = f"{cp.quantity} × {format_money(price.amount, price.currency)} · {detail}"
            if cp.status == CustomerProductStatus.TRIALING and cp.trial_ends_at:
                detail += f" · after the trial ends {format_day(cp.trial_ends_at)}"
            lines.append(InvoiceLine("fixed", str(cp.product), detail, price.amount * cp.quantity, price.currency))

    live_ids = {cp.pk for cp in live}
    products = {cp.pk: cp.product for cp in live}
    for b in sorted(balances, key=lambda b: (b.feature.name.lower(), b.pk)):
        if b.customer_product_id not in live_ids or not b.overage_allowed or b.unlimited:
            continue
        price = products[b.customer_product_id].usage_price_for(b.feature_id)
        if price is None:
            continue
        remaining = overrides.get(b.pk, b.remaining)
        over = max(ZERO, -remaining)
        units = billable_units(over, price.billing_units)
        if units * price.amount == 0:
            continue  # no overage yet: nothing to charge, no $0.00 line
        per = "" if price.billing_units == 1 else f" per {format_qty(price.billing_units)}"
        lines.append(
            InvoiceLine(
                "overage",
                f"{b.feature.name} overage",
                f"{format_qty(over)} × {format_money(price.amount, price.currency)}{per}",
                units * price.amount,
                price.currency,
            )
        )

    currencies = {line.currency for line in lines}
    currency = lines[0].currency if lines else "usd"
    subtotal = sum(line.amount for line in lines if line.currency == currency)

    date_ = min(filter(None, (_next_billing_date(cp, now) for cp in live)), default=None)
    applies_on = date_ or now

    running = subtotal
    discounts = [
        r
        for r in rewards
        if r.reward.is_discount
        and not r.expired
        and (r.applied.expires_at is None or r.applied.expires_at > applies_on)
    ]
    # Percentages first, each on what is left, then fixed amounts; never below zero.
    discounts.sort(key=lambda r: r.reward.type != RewardType.PERCENTAGE_DISCOUNT)
    for r in discounts:
        reward = r.reward
        if reward.type == RewardType.PERCENTAGE_DISCOUNT:
            off = round_minor(Decimal(running) * reward.value / 100)
        elif reward.currency.lower() == currency:
            off = min(running, round_minor(reward.value))
        else:
            continue  # a fixed discount in another currency does not apply to this invoice
        off = min(off, running)
        if lines:
            lines.append(InvoiceLine("discount", reward.name, f"{r.summary} · {r.duration}", -off, currency))
        running -= off

    return UpcomingInvoice(
        lines=lines,
        currency=currency,
        date=date_,
        subtotal=subtotal,
        total=running,
        mixed_currencies=len(currencies) > 1,
    )
