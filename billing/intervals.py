"""Calendar arithmetic for reset and billing intervals, and their words. Months are counted from the anchor, so
a balance that resets on the 31st resets on the last day of shorter months and back on the 31st after them."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

MONTHS = {"month": 1, "quarter": 3, "semi_annual": 6, "year": 12}
DAYS = {"day": 1, "week": 7}
# How each interval with a length reads, once and several times.
INTERVAL_WORDS = {
    "day": ("day", "days"),
    "week": ("week", "weeks"),
    "month": ("month", "months"),
    "quarter": ("quarter", "quarters"),
    "semi_annual": ("half year", "half years"),
    "year": ("year", "years"),
}


def add_months(dt: datetime, months: int) -> datetime:
    month_index = dt.month - 1 + months
    year, month = dt.year + month_index // 12, month_index % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day)


def add_intervals(dt: datetime, interval: str, count: int = 1, times: int = 1) -> datetime:
    """`dt` moved on by `times` × (`count` × `interval`)."""
    if interval in DAYS:
        return dt + timedelta(days=DAYS[interval] * count * times)
    if interval in MONTHS:
        return add_months(dt, MONTHS[interval] * count * times)
    raise ValueError(f"{interval!r} has no length")


def next_after(anchor: datetime, interval: str, count: int, now: datetime) -> datetime:
    """The first of anchor + k intervals (k ≥ 1) that lies after `now`: missed periods are skipped."""
    if interval in DAYS:
        step = timedelta(days=DAYS[interval] * count)
        k = max(1, (now - anchor) // step + 1)
        return anchor + step * k
    step_months = MONTHS[interval] * count
    months_apart = (now.year - anchor.year) * 12 + (now.month - anchor.month)
    k = max(1, months_apart // step_months - 1)
    while add_months(anchor, step_months * k) <= now:
        k += 1
    return add_months(anchor, step_months * k)
