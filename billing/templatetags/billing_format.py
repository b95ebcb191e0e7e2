"""How money, quantities and times look on the dashboard: one place, so every page agrees.

- money: minor units + currency → "$1,240.00", "−$19.80", "¥1,200"
- qty: a Decimal quantity → "1,240", "12.5", "−300"
- when: a datetime → <time title="full timestamp">12 Dec 2026</time>
- ago: a datetime → <time title="full timestamp">2 min ago</time> (activity and events only)
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.html import format_html

from billing.models import CustomerReward
from billing.money import decimals_of

register = template.Library()

MINUS = "\u2212"
DASH = "—"

CURRENCY_SYMBOLS = {
    "usd": "$",
    "eur": "€",
    "gbp": "£",
    "jpy": "¥",
    "inr": "₹",
    "krw": "₩",
    "cny": "CN¥",
    "cad": "CA$",
    "aud": "A$",
    "nzd": "NZ$",
    "brl": "R$",
    "mxn": "MX$",
    "hkd": "HK$",
    "sgd": "SGD ",
    "chf": "CHF ",
}


def format_money(minor, currency: str) -> str:
    if minor is None or minor == "":
        return DASH
    currency = (currency or "usd").lower()
    decimals = decimals_of(currency)
    value = Decimal(minor) / (10**decimals)
    body = f"{abs(value):,.{decimals}f}"
    sign = MINUS if value < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency.upper()}"


def format_qty(value) -> str:
    if value is None or value == "":
        return DASH
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    sign = MINUS if d < 0 else ""
    d = abs(d)
    if d == d.to_integral_value():
        return f"{sign}{int(d):,}"
    text = f"{d:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{sign}{text}"


def format_timestamp(dt: datetime) -> str:
    """The full timestamp shown on hover: "12 Dec 2026, 14:05:09 UTC"."""
    local = timezone.localtime(dt)
    return f"{local.day} {local:%b %Y, %H:%M:%S} {local.tzname()}"


def format_day(dt) -> str:
    if isinstance(dt, datetime):
        dt = timezone.localtime(dt)
    return f"{dt.day} {dt:%b %Y}"


def format_ago(dt: datetime, now: datetime | None = None) -> str:
    now = now or timezone.now()
    seconds = (now - dt).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 86400:
        text = f"{int(seconds // 3600)} h"
    elif seconds < 86400 * 30:
        days = int(seconds // 86400)
        text = f"{days} day{'s' if days != 1 else ''}"
    else:
        return format_day(dt)
    return f"in {text}" if future else f"{text} ago"


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
    if value in (None, {}, []):
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True, default=str)


@register.filter
def reward_terms(reward) -> str:
    """What a reward gives and for how long: "20% off · 3 months", "$10.00 off · once"."""
    from billing.selectors import RewardRow

    row = RewardRow(applied=CustomerReward(reward=reward), now=timezone.now())
    return f"{row.summary} · {row.duration}"
