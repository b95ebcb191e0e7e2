"""The units Autumn's JSON speaks: times are milliseconds since the Unix epoch, money is in major units."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from billing.money import decimals_of
from billing.quantities import to_number


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def major_units(amount: int, currency: str):
    """Stripe's minor units (cents) as Autumn shows money: 2999 usd → 29.99."""
    return to_number(Decimal(amount) / 10 ** decimals_of(currency))
