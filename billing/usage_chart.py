"""A feature's usage as a chart, server-rendered SVG (no JavaScript needed to read it): usage accumulated over
each cycle as a line (back to 0 at every reset), the allowance as a dashed line, the part above it (overage)
shaded, resets and manual edits marked, and a date axis. The range is 7, 30 or 90 days or this cycle (since the
last reset in the last 90 days). Daily totals and marks come from `usage_graph.usage_history`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import mark_safe

from billing.models import Balance, Feature
from billing.usage_graph import UsageHistory, usage_history
from customers.formatting import format_day, format_qty
from customers.models import Customer

RANGES = {"7": "7 days", "30": "30 days", "90": "90 days", "cycle": "This cycle"}
DEFAULT_RANGE = "30"
W, H = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28


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

        label = f"{self.feature.name}: usage over {RANGES[self.range].lower()}, {format_qty(self.total)} in all" + (
            f", allowance {format_qty(self.allowance)}" if self.allowance is not None else ""
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
        if self.allowance is not None and self.in_overage:  # overage: the area above the allowance, shaded
            pts = [f"{x(i):.1f},{y(max(c, self.allowance)):.1f}" for i, c in enumerate(self.cumulative)]
            base = f"{x(n - 1):.1f},{y(self.allowance):.1f} {x(0):.1f},{y(self.allowance):.1f}"
            parts.append(f'<polygon class="overage" points="{" ".join(pts)} {base}"><title>Overage</title></polygon>')
        line = " ".join(f"{x(i):.1f},{y(c):.1f}" for i, c in enumerate(self.cumulative))
        parts.append(f'<polyline class="used" points="{line}"/>')
        for i, (day, value, c) in enumerate(zip(self.days, self.values, self.cumulative, strict=True)):
            title = f"{format_day(day)}: {format_qty(value)} used, {format_qty(c)} this cycle"
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
    cumulative, running = [], Decimal(0)
    for i, value in enumerate(values):
        if first + timedelta(days=i) in resets and i:
            running = Decimal(0)
        running += value
        cumulative.append(running)
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
    )
