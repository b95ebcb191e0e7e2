"""How quantities and money read on the dashboard: one filter each."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "cad": "CA$", "aud": "A$"}
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "ugx"}


@register.filter
def quantity(value) -> str:
    """1240.000000 → "1,240"; 12.500000 → "12.5". Empty for None."""
    if value is None or value == "":
        return ""
    value = Decimal(value)
    text = f"{value:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


@register.filter
def money(amount, currency: str = "usd") -> str:
    """Integer minor units with the currency's symbol and two decimals: 9900, "usd" → "$99.00"."""
    if amount is None:
        return ""
    currency = (currency or "usd").lower()
    sign = "−" if amount < 0 else ""
    amount = abs(int(amount))
    symbol = SYMBOLS.get(currency, currency.upper() + " ")
    if currency in ZERO_DECIMAL:
        return f"{sign}{symbol}{amount:,}"
    return f"{sign}{symbol}{amount // 100:,}.{amount % 100:02d}"


@register.filter
def reward_terms(reward) -> str:
    """ "20% off · 3 months", "$10.00 off · once", "15% off · forever"."""
    if reward.type == "percentage_discount":
        off = f"{quantity(reward.value)}% off"
    elif reward.type == "fixed_discount":
        off = f"{money(int(reward.value), reward.currency)} off"
    else:
        off = reward.get_type_display()
    if reward.duration == "months" and reward.duration_months:
        n = reward.duration_months
        return f"{off} · {n} month{'s' if n != 1 else ''}"
    return f"{off} · {'forever' if reward.duration == 'forever' else 'once'}"
