"""Checked readers of a Stripe object's fields: each answers None when the field is absent or null and
raises Malformed when it is of another type, before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime

MAX_BIG_INT = 2**63 - 1  # the largest number a bigint column holds
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds


class Malformed(Exception):
    """A field of a Stripe object that is not what Stripe sends (a text for a number, a list for an
    object, …). Raised before anything is written: the event changes nothing and is recorded as ignored."""


def read_str(obj: dict, key: str, *, max_length: int = 255) -> str | None:
    """A text of at most `max_length` characters."""
    value = obj.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > max_length):
        raise Malformed(f"{key} is not a text of at most {max_length} characters")
    return value


def read_int(obj: dict, key: str) -> int | None:
    """A whole number a bigint column holds (a boolean is not one)."""
    value = obj.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_BIG_INT):
        raise Malformed(f"{key} is not a whole number")
    return value


def read_dict(obj: dict, key: str) -> dict:
    """An object; {} when absent."""
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise Malformed(f"{key} is not an object")
    return value or {}


def read_dicts(obj: dict, key: str) -> list[dict]:
    """A list of objects; [] when absent."""
    value = obj.get(key)
    if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        raise Malformed(f"{key} is not a list of objects")
    return value or []


def read_ref(obj: dict, key: str) -> str | None:
    """A Stripe id, given as such or as the expanded object; "" counts as none."""
    value = obj.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise Malformed(f"{key} is not a Stripe id")
    return value or None


def read_url(obj: dict, key: str) -> str:
    """An https URL; "" when absent."""
    value = read_str(obj, key, max_length=1000) or ""
    if value and not value.startswith("https://"):
        raise Malformed(f"{key} is not an https URL")
    return value


def as_time(value: int | None, key: str) -> datetime | None:
    """A Unix time (read from `key`) as a datetime; None for none or 0."""
    if value is None or value <= 0:
        return None
    if value > MAX_TIMESTAMP:
        raise Malformed(f"{key} is not a time")
    return datetime.fromtimestamp(value, tz=UTC)


def read_time(obj: dict, key: str) -> datetime | None:
    """A Unix time as a datetime."""
    return as_time(read_int(obj, key), key)


def read_meta(metadata: dict, key: str = "product_id") -> str | None:
    """A metadata value that is a non-empty text; None for anything else (metadata is free-form)."""
    value = metadata.get(key)
    return value if isinstance(value, str) and value else None


def read_invoice_detail(obj: dict) -> dict:
    """What an invoice bills, when the snapshot carries its lines: `lines` ([{id, description, quantity,
    amount}]), `subtotal`, `tax` and `discounts` ([{name, amount}]), amounts in minor units. {} without them."""
    if "lines" not in obj:
        return {}
    lines = []
    for line in read_dicts(read_dict(obj, "lines"), "data"):
        quantity = read_int(line, "quantity")
        lines.append(
            {
                "id": read_ref(line, "id") or "",
                "description": read_str(line, "description", max_length=5000) or "",
                "quantity": quantity,
                "amount": read_int(line, "amount") or 0,
            }
        )
    taxes = read_dicts(obj, "total_taxes")
    tax = sum(read_int(t, "amount") or 0 for t in taxes) if taxes else read_int(obj, "tax")
    discounts = [
        {"name": read_ref(d, "discount") or "Discount", "amount": read_int(d, "amount") or 0}
        for d in read_dicts(obj, "total_discount_amounts")
    ]
    return {"lines": lines, "subtotal": read_int(obj, "subtotal"), "tax": tax, "discounts": discounts}
