"""The API's units on the wire: times are milliseconds since the Unix epoch, money is in major units."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from billing.money import decimals_of
from billing.quantities import to_number

MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def major_units(amount: int, currency: str):
    """Stripe's minor units (cents) as Autumn shows money: 2999 usd → 29.99."""
    return to_number(Decimal(amount) / 10 ** decimals_of(currency))
