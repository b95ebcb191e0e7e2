"""A feature's usage as a chart, server-rendered SVG (no JavaScript needed to read it): usage accumulated over
each cycle as a line (back to 0 at every reset), the allowance as a dashed line, the part above it (overage)
shaded, resets and manual edits marked, and a date axis. The range is 7, 30 or 90 days or this cycle (since the
last reset in the last 90 days). Daily totals and marks come from `usage_graph.usage_history`.

A credit pool's chart is split by the features that drew it: each feature's credits this cycle a stacked area
(in the order of their credits in the range, largest at the bottom), credits tracked on the pool directly one
more, each day's tooltip listing the split, and the legend and a table each feature's credits in the range.
The split comes from the daily credit draws (`usage_graph.credit_draws`, one query however many features)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import mark_safe

from billing.models import Balance, Feature, FeatureType
from billing.usage_graph import UsageHistory, credit_draws, usage_history
from customers.formatting import format_day, format_qty
from customers.models import Customer

RANGES = {"7": "7 days", "30": "30 days", "90": "90 days", "cycle": "This cycle"}
DEFAULT_RANGE = "30"
W, H = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28
PALETTE_SIZE = 6  # the split's colours, .series.s0 … .s5 in static/css/app.css; a seventh feature takes s0 again
DIRECT = "Tracked directly"


@dataclass
class Series:
    """One part of a credit pool's split: a feature's credits per shown day (or those tracked on the pool)."""

    name: str
    values: list[Decimal]
    colour: int = 0
    share: str = ""  # of the pool's usage in the range, "40 %"; "—" when that is not above 0

    @property
    def total(self) -> Decimal:
        return sum(self.values, Decimal(0))


def _cumulate(values: list[Decimal], first: date, resets: list[date]) -> list[Decimal]:
    """Usage since the last reset at each day's end."""
    cumulative, running = [], Decimal(0)
    for i, value in enumerate(values):
        if i and first + timedelta(days=i) in resets:
            running = Decimal(0)
        running += value
        cumulative.append(running)
    return cumulative


@dataclass
class UsageChart:
    feature: Feature
    range: str
    first: date
    values: list[Decimal]  # usage per day
    cumulative: list[Decimal]  # usage since the last reset, at each day's end
    allowance: Decimal | None  # the plan's granted now; None when unlimited or no balance
    resets: list[date]
    edits: list[tuple[date, str]]
    series: list[Series] = field(default_factory=list)  # a credit pool's split; empty for any other feature

    @property
    def split_words(self) -> str:
        return ", ".join(f"{s.name} {format_qty(s.total)}" for s in self.series)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(len(self.values))]

    @property
    def total(self) -> Decimal:
        return sum(self.values, Decimal(0))

    @property
    def in_overage(self) -> bool:
        return self.allowance is not None and any(c > self.allowance for c in self.cumulative)

    @property
    def svg(self) -> str:
        n = len(self.values)
        top_value = max([*self.cumulative, self.allowance or Decimal(0), Decimal(1)])
        plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

        def x(i: float) -> float:
            return LEFT + (plot_w * (i + 0.5) / n if n else 0)

        def y(v: Decimal) -> float:
            return TOP + plot_h - float(v) / float(top_value) * plot_h

        label = (
            f"{self.feature.name}: usage over {RANGES[self.range].lower()}, {format_qty(self.total)} in all"
            + (f", allowance {format_qty(self.allowance)}" if self.allowance is not None else "")
            + (f"; credits by feature: {self.split_words}" if self.series else "")
        )
        parts = [
            f'<svg class="usage-chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{escape(label)}">',
        ]
        for frac in (0, 0.5, 1):  # the value axis
            v = top_value * Decimal(str(frac))
            parts.append(
                f'<g class="tick"><line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
                f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                f"{escape(format_qty(v.quantize(1)))}</text></g>"
            )
        step = max(1, n // 6)  # the date axis: about six dates
        for i in range(0, n, step):
            parts.append(
                f'<text class="date" x="{x(i):.1f}" y="{H - 8}" text-anchor="middle">'
                f"{escape(format_day(self.days[i]))}</text>"
            )
        below = [Decimal(0)] * n  # the split: each feature's credits this cycle, stacked
        for series in self.series:
            above = [b + c for b, c in zip(below, _cumulate(series.values, self.first, self.resets), strict=True)]
            outline = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(above)]
            outline += [f"{x(i):.1f},{y(below[i]):.1f}" for i in reversed(range(n))]
            parts.append(
                f'<polygon class="series s{series.colour}" points="{" ".join(outline)}">'
                f"<title>{escape(series.name)}: {escape(format_qty(series.total))}</title></polygon>"
            )
            below = above
        if self.allowance is not None and self.in_overage:  # overage: the area above the allowance, shaded
            pts = [f"{x(i):.1f},{y(max(c, self.allowance)):.1f}" for i, c in enumerate(self.cumulative)]
            base = f"{x(n - 1):.1f},{y(self.allowance):.1f} {x(0):.1f},{y(self.allowance):.1f}"
            parts.append(f'<polygon class="overage" points="{" ".join(pts)} {base}"><title>Overage</title></polygon>')
        line = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, c in enumerate(self.cumulative))
        parts.append(f'<polyline class="used" points="{line}"/>')
        for i, (day, value, c) in enumerate(zip(self.days, self.values, self.cumulative, strict=True)):
            split = "; ".join(f"{s.name} {format_qty(s.values[i])}" for s in self.series if s.values[i])
            title = f"{format_day(day)}: {format_qty(value)} used" + (f" ({split})" if split else "")
            title += f", {format_qty(c)} this cycle"
            parts.append(
                f'<g class="day"><title>{escape(title)}</title><rect x="{x(i) - plot_w / n / 2:.1f}" y="{TOP}" '
                f'width="{plot_w / n:.1f}" height="{plot_h}"/></g>'
            )
        if self.allowance is not None:
            ay = y(self.allowance)
            parts.append(
                f'<g class="allowance"><title>Allowance {escape(format_qty(self.allowance))}</title>'
                f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{ay:.1f}" y2="{ay:.1f}"/></g>'
            )
        index = {d: i for i, d in enumerate(self.days)}
        for day in self.resets:
            rx = x(index[day]) - plot_w / n / 2
            parts.append(
                f'<g class="reset"><title>Reset, {escape(format_day(day))}</title>'
                f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{TOP}" y2="{TOP + plot_h}"/></g>'
            )
        for day, title in self.edits:
            ex = x(index[day])
            parts.append(
                f'<g class="edit"><title>{escape(title)}</title>'
                f'<path d="M{ex - 5:.1f},{TOP + 8} L{ex:.1f},{TOP} L{ex + 5:.1f},{TOP + 8} Z"/></g>'
            )
        parts.append("</svg>")
        return mark_safe("".join(parts))  # every interpolated text is escaped above


def usage_chart(customer: Customer, feature: Feature, range_: str, now: datetime | None = None) -> UsageChart:
    """The chart of `feature` for `customer` over `range_` (one of RANGES; the caller checks it)."""
    days = 90 if range_ == "cycle" else int(range_)
    history: UsageHistory = usage_history(customer, features=[feature], days=days, now=now)[feature.pk]
    values = list(history.values)
    first = history.first
    resets = [m.day for m in history.resets]
    if range_ == "cycle" and resets:
        start = (resets[-1] - first).days
        values, first = values[start:], resets[-1]
        resets = [resets[-1]]
    shown = {first + timedelta(days=i) for i in range(len(values))}
    cumulative = _cumulate(values, first, resets)
    series = []
    if feature.type == FeatureType.CREDIT_SYSTEM:
        series = _split(credit_draws(customer, feature, days=days, now=now), values, first)
    balance = (
        Balance.objects.filter(customer=customer, feature=feature, customer_product__isnull=False)
        .order_by("id")
        .first()
    )
    allowance = None if balance is None or balance.unlimited else balance.allowance + balance.adjustment
    return UsageChart(
        feature=feature,
        range=range_,
        first=first,
        values=values,
        cumulative=cumulative,
        allowance=allowance,
        resets=[d for d in resets if d in shown],
        edits=[(m.day, m.title) for m in history.edits if m.day in shown],
        series=series,
    )


def _split(drawers, values: list[Decimal], first: date) -> list[Series]:
    """The pool's credits per shown day by the feature that drew them, and those tracked on the pool directly
    (the pool's usage less every draw), largest in the range first, each with its colour."""
    days = [first + timedelta(days=i) for i in range(len(values))]
    series = [Series(d.name, [d.per_day.get(day, Decimal(0)) for day in days]) for d in drawers]
    series = [s for s in series if any(s.values)]
    direct = [v - sum((s.values[i] for s in series), Decimal(0)) for i, v in enumerate(values)]
    if any(direct):
        series.append(Series(DIRECT, direct))
    series.sort(key=lambda s: (-s.total, s.name == DIRECT, s.name))
    total = sum(values, Decimal(0))
    for i, s in enumerate(series):
        s.colour = i % PALETTE_SIZE
        s.share = f"{s.total / total * 100:.0f} %" if total > 0 else "—"
    return series
