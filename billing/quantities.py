"""Quantities are Decimals with at most 6 decimals and an absolute value of at most 10^15."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from customers.errors import ServiceError

ZERO = Decimal(0)
MAX_ABS = Decimal(10) ** 15


def overage(remaining: Decimal) -> Decimal:
    """What a balance (or a feature's total) with `remaining` is over its grant: the usage beyond it,
    charged at the usage price. The one definition (balances, the API, the invoice preview, the dashboard)."""
    return max(ZERO, -remaining)


def left(remaining: Decimal) -> Decimal:
    """What a balance with `remaining` has left to use: never below zero (the usage beyond it is `overage`)."""
    return max(ZERO, remaining)


MAX_DECIMALS = 6
QUANTUM = Decimal(10) ** -MAX_DECIMALS  # the smallest step of a quantity


def parse_quantity(raw, *, field: str = "value", allow_negative: bool = True) -> Decimal:
    """Turn user or client input into a Decimal quantity, or raise ServiceError saying what is wrong."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ServiceError(f"{field} is required.", code="invalid_input", field=field)
    if isinstance(raw, bool):
        raise ServiceError(f"{field} must be a number.", code="invalid_input", field=field)
    if isinstance(raw, float):
        raw = repr(raw)
    try:
        value = Decimal(str(raw).strip().replace(",", "")) if isinstance(raw, str) else Decimal(raw)
    except (InvalidOperation, ValueError, TypeError):
        raise ServiceError(f"{field} must be a number, not {str(raw)[:40]!r}.", code="invalid_input", field=field)
    if value.is_nan():
        raise ServiceError(f"{field} must be a number, not NaN.", code="invalid_input", field=field)
    if value.is_infinite():
        raise ServiceError(f"{field} must be a finite number.", code="invalid_input", field=field)
    if abs(value) > MAX_ABS:
        raise ServiceError(
            f"{field} must be between -1,000,000,000,000,000 and 1,000,000,000,000,000.",
            code="invalid_input",
            field=field,
        )
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise ServiceError(f"{field} may have at most {MAX_DECIMALS} decimals.", code="invalid_input", field=field)
    if not allow_negative and value < 0:
        raise ServiceError(f"{field} must not be negative.", code="invalid_input", field=field)
    return value


def to_number(value: Decimal | None) -> int | float | None:
    """A Decimal as a JSON number: integers stay integers."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)
