"""How quantities, times and JSON look to people: one place, so every page and message agrees.

Money has its own home beside its rounding rules (`billing/money.py`); the template filters that show
all of them are `billing/templatetags/billing_format.py`.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

MINUS = "\u2212"
DASH = "—"


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


def format_json(value) -> str:
    """Event properties and metadata, on one line."""
    if value in (None, {}, []):
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True, default=str)
