"""Money is integer minor units plus an ISO currency. Rounding and formatting happen here and nowhere else."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from customers.formatting import DASH, MINUS

# Currencies Stripe counts in whole units (no cents).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)


# Currencies counted in thousandths.
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def decimals_of(currency: str) -> int:
    code = (currency or "").lower()
    return 0 if code in ZERO_DECIMAL_CURRENCIES else 3 if code in THREE_DECIMAL_CURRENCIES else 2


def round_minor(value: Decimal | int) -> int:
    """A computed amount of minor units (a percentage of a total, say), rounded half up to a whole unit."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def billable_units(quantity: Decimal, billing_units: Decimal) -> int:
    """How many price units a usage quantity costs: a started block of `billing_units` counts in full."""
    if quantity <= 0:
        return 0
    return int((Decimal(quantity) / Decimal(billing_units)).to_integral_value(rounding=ROUND_CEILING))


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
