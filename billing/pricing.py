"""Money from quantities: what usage beyond the allowance costs. Amounts are integer minor units."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from billing.models import Balance, Price

ZERO = Decimal(0)


def overage_amount(units: Decimal, price: Price) -> int:
    """Overage is sold in whole packages of `billing_units`: a started package is charged in full."""
    if units <= 0:
        return 0
    packages = (units / price.billing_units).to_integral_value(rounding=ROUND_CEILING)
    return int(packages * price.amount)


def usage_price(balance: Balance) -> Price | None:
    """The per-unit price the balance's product charges for usage of its feature beyond the allowance."""
    if balance.customer_product_id is None or not balance.overage_allowed:
        return None
    return (Price.objects.filter(product_id=balance.customer_product.product_id, type=Price.Type.USAGE,
                                 feature_id=balance.feature_id).order_by("id").first())


@dataclass
class InvoiceImpact:
    """What setting a balance to a new remaining value does to the next invoice's overage line."""

    price: Price | None
    overage_before: Decimal
    overage_after: Decimal
    amount_before: int
    amount_after: int

    @property
    def currency(self) -> str:
        return self.price.currency if self.price else "usd"

    @property
    def delta(self) -> int:
        return self.amount_after - self.amount_before


def invoice_impact(balance: Balance, new_remaining: Decimal | None, price: Price | None = None) -> InvoiceImpact:
    before = max(ZERO, -balance.remaining)
    after = before if new_remaining is None else max(ZERO, -new_remaining)
    if price is None:
        return InvoiceImpact(price=None, overage_before=before, overage_after=after, amount_before=0, amount_after=0)
    return InvoiceImpact(price=price, overage_before=before, overage_after=after,
                         amount_before=overage_amount(before, price), amount_after=overage_amount(after, price))
