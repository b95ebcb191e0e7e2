"""Credit systems: one pool of credits that several metered features draw from, each at its own cost
(the pool's credit schema, `CreditCost` rows). What a quantity of a feature costs in credits, and which
pools a feature draws from, in the order a track or a check tries them."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from billing.models import CreditCost, Feature
from billing.quantities import QUANTUM, ZERO


def credits_for(quantity: Decimal | Fraction, cost: Decimal) -> Decimal:
    """`quantity` units of a feature (exact, perhaps a fraction left over by an earlier draw) in credits at
    `cost` each, to the 6 decimals a balance keeps. A product finer than that rounds away from zero, so no
    use is ever free and a refund gives back as much as the same use took."""
    exact = Fraction(quantity) * Fraction(cost)
    millionths = math.ceil(abs(exact) / Fraction(QUANTUM))
    return (Decimal(millionths) * QUANTUM).copy_sign(Decimal(exact.numerator or 1)) if millionths else ZERO


def credit_costs_of(features: Iterable[Feature]) -> dict[int, list[CreditCost]]:
    """The credit schema lines that list each feature (by feature pk), each with its credit system: the
    pools a track of it falls through to once its own balance is used up, in the order of the pools' ids.
    An archived credit system still draws: archiving hides it from new plans, never the balances customers hold.
    One query."""
    pks = [f.pk for f in features if f.is_metered]
    found: dict[int, list[CreditCost]] = defaultdict(list)
    if not pks:
        return found
    lines = (
        CreditCost.objects.filter(metered_feature_id__in=pks)
        .select_related("credit_system")
        .order_by("credit_system__feature_id", "id")
    )
    for line in lines:
        found[line.metered_feature_id].append(line)
    return found
