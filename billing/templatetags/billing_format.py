"""How money, quantities and times look on the dashboard, as template filters over the one home of each
(`customers/formatting.py`, `billing/money.py`), so every page agrees.

- money: minor units + currency → "$1,240.00", "−$19.80", "¥1,200"
- qty: a Decimal quantity → "1,240", "12.5", "−300"
- when: a datetime → <time title="full timestamp">12 Dec 2026</time>
- ago: a datetime → <time title="full timestamp">2 min ago</time> (activity and events only)
- plan_price: a product → "$99.00 / month", as the catalogue prices it
"""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from billing.catalogue_page import price_text
from billing.models import CustomerReward, Product
from billing.money import format_money
from billing.selectors import RewardRow
from customers.formatting import DASH, format_ago, format_day, format_json, format_qty, format_timestamp

register = template.Library()


@register.filter
def plan_price(product: Product) -> str:
    return price_text(product)


@register.filter
def money(minor, currency="usd"):
    """{{ invoice.total|money:invoice.currency }}"""
    return format_money(minor, currency)


@register.filter
def qty(value):
    """{{ balance.remaining|qty }}"""
    return format_qty(value)


@register.filter
def when(dt):
    """A day, with the full timestamp in the title."""
    if not dt:
        return DASH
    if not isinstance(dt, datetime):
        return format_day(dt)
    return format_html('<time datetime="{}" title="{}">{}</time>', dt.isoformat(), format_timestamp(dt), format_day(dt))


@register.filter
def ago(dt):
    """A relative time, with the full timestamp in the title."""
    if not dt:
        return DASH
    return format_html('<time datetime="{}" title="{}">{}</time>', dt.isoformat(), format_timestamp(dt), format_ago(dt))


@register.filter
def timestamp(dt):
    return format_timestamp(dt) if dt else DASH


@register.filter
def json_compact(value):
    """Event properties and metadata, on one line."""
    return format_json(value)


@register.filter
def reward_terms(reward) -> str:
    """What a reward gives and for how long: "20% off · 3 months", "$10.00 off · once"."""
    row = RewardRow(applied=CustomerReward(reward=reward), now=timezone.now())
    return f"{row.summary} · {row.duration}"
