"""The upcoming invoice, as the customer page and the balance popup show it: the live products' fixed prices,
the overage of balances in overage, the discounts of active coupons, and when it is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from billing.intervals import INTERVAL_WORDS, next_after
from billing.models import LIVE_PRODUCT_STATUSES, Balance, CustomerProduct, CustomerProductStatus, RewardType
from billing.money import billable_units, format_money, round_minor
from billing.quantities import overage
from billing.selectors import RewardRow, customer_balances, customer_products, customer_rewards
from customers.formatting import format_day, format_qty
from customers.models import Customer

PRICE_CADENCE = {"month": "monthly", "quarter": "quarterly", "semi_annual": "every 6 months", "year": "yearly"}


def cadence(interval: str, count: int = 1) -> str:
    """How often a price is charged: "monthly", "every 2 years", "one-off"."""
    if interval == "one_off":
        return "one-off"
    if count == 1:
        return PRICE_CADENCE[interval]
    return f"every {count} {INTERVAL_WORDS[interval][1]}"


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
    balances = customer_balances(customer) if balances is None else balances
    rewards = customer_rewards(customer, now=now) if rewards is None else rewards

    # A product granted for free is charged nothing, neither its price nor its overage.
    live = [cp for cp in cps if cp.status in LIVE_PRODUCT_STATUSES and not cp.granted_free]
    lines = _fixed_lines(live) + _overage_lines(live, balances, remaining_overrides or {})
    currencies = {line.currency for line in lines}
    currency = lines[0].currency if lines else "usd"
    subtotal = sum(line.amount for line in lines if line.currency == currency)
    date_ = min(filter(None, (_next_billing_date(cp, now) for cp in live)), default=None)
    discounts = _discount_lines(rewards, subtotal=subtotal, currency=currency, applies_on=date_ or now)
    if lines:
        lines += discounts
    return UpcomingInvoice(
        lines=lines,
        currency=currency,
        date=date_,
        subtotal=subtotal,
        total=subtotal + sum(line.amount for line in discounts),
        mixed_currencies=len(currencies) > 1,
    )


def _fixed_lines(live: list[CustomerProduct]) -> list[InvoiceLine]:
    """The recurring prices of the live products, times their quantity: plans first, then add-ons."""
    lines = []
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
    return lines


def _overage_lines(
    live: list[CustomerProduct], balances: list[Balance], overrides: dict[int, Decimal]
) -> list[InvoiceLine]:
    """The overage of the live products' balances in overage, at each product's usage price, by feature name."""
    products = {cp.pk: cp.product for cp in live}
    lines = []
    for b in sorted(balances, key=lambda b: (b.feature.name.lower(), b.pk)):
        price = b.overage_price(products[b.customer_product_id]) if b.customer_product_id in products else None
        if price is None:
            continue
        over = overage(overrides.get(b.pk, b.remaining))
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
    return lines


def _discount_lines(
    rewards: list[RewardRow], *, subtotal: int, currency: str, applies_on: datetime
) -> list[InvoiceLine]:
    """The discounts of the coupons still active on `applies_on`: percentages first, each on what is left, then
    fixed amounts in the invoice's currency; never below zero."""
    discounts = [
        r
        for r in rewards
        if r.reward.is_discount
        and not r.expired
        and (r.applied.expires_at is None or r.applied.expires_at > applies_on)
    ]
    discounts.sort(key=lambda r: r.reward.type != RewardType.PERCENTAGE_DISCOUNT)
    running = subtotal
    lines = []
    for r in discounts:
        reward = r.reward
        if reward.type == RewardType.PERCENTAGE_DISCOUNT:
            off = round_minor(Decimal(running) * reward.value / 100)
        elif reward.currency.lower() == currency:
            off = min(running, round_minor(reward.value))
        else:
            continue  # a fixed discount in another currency does not apply to this invoice
        off = min(off, running)
        lines.append(InvoiceLine("discount", reward.name, f"{r.summary} · {r.duration}", -off, currency))
        running -= off
    return lines
