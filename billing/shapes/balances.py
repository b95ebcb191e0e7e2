"""A customer's balances in Autumn's shapes: each balance (breakdown), a feature's total, a flag, a track's answer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from billing.engine.decide import CheckResult, FeatureBalance
from billing.models import Balance, Feature, FeatureType, Interval, Price
from billing.quantities import left, to_number
from billing.shapes.units import major_units, ms
from customers.models import Customer


def balance_id(balance: Balance) -> str:
    """The id the API names a balance by: the caller's balance_id of a grant, else ours."""
    return balance.balance_id


def breakdown_json(balance: Balance, prices: dict[int, Price | None] | None = None) -> dict:
    """One balance; its usage price is looked up in its product's prices unless `prices` (by pk) has it."""
    price = prices[balance.pk] if prices and balance.pk in prices else balance.usage_price()
    resets = balance.interval != Interval.LIFETIME
    return {
        "id": balance_id(balance),
        "plan_id": balance.customer_product.product.product_id if balance.customer_product_id else None,
        "included_grant": to_number(balance.granted),
        "prepaid_grant": 0,
        "remaining": to_number(left(balance.remaining)),
        "usage": to_number(balance.usage),
        "unlimited": balance.unlimited,
        "reset": {
            "interval": balance.interval,
            "interval_count": balance.interval_count,
            "resets_at": ms(balance.next_reset_at),
        }
        if resets
        else None,
        "price": {
            "amount": major_units(price.amount, price.currency),
            "billing_units": to_number(price.billing_units),
            "billing_method": "usage_based",
            "max_purchase": None,
        }
        if price
        else None,
        "expires_at": ms(balance.expires_at),
    }


def balance_json(fb: FeatureBalance, prices: dict[int, Price | None] | None = None) -> dict:
    """All of a customer's balances of one feature, added up; `breakdown` lists each. `prices`: the usage
    price of each balance (by pk) where the caller already has it."""
    return {
        "feature_id": fb.feature.feature_id,
        "granted": to_number(fb.granted),
        # Autumn reports what is left, never below zero; usage beyond the allowance shows in `usage`.
        "remaining": to_number(left(fb.remaining)),
        "usage": to_number(fb.usage),
        "unlimited": fb.unlimited,
        "overage_allowed": fb.overage_allowed,
        "max_purchase": None,
        "next_reset_at": ms(fb.next_reset_at),
        "breakdown": [breakdown_json(b, prices) for b in fb.balances],
    }


def flag_json(feature: Feature, balances: list[Balance]) -> dict:
    first = balances[0]
    return {
        "id": balance_id(first),
        "plan_id": first.customer_product.product.product_id if first.customer_product_id else None,
        "expires_at": ms(first.expires_at),
        "feature_id": feature.feature_id,
    }


def balance_or_flag(feature: Feature, balances: list[Balance]) -> tuple[dict | None, dict | None]:
    """(balance, flag): a boolean feature's balances show as a flag, any other's as a balance."""
    if not balances:
        return None, None
    if feature.type == FeatureType.BOOLEAN:
        return None, flag_json(feature, balances)
    return balance_json(FeatureBalance.of(feature, balances)), None


def grouped_balances(balances: Iterable[Balance]) -> dict[Feature, list[Balance]]:
    """The balances by feature, the features in the order of their ids."""
    grouped: dict[int, list[Balance]] = defaultdict(list)
    features: dict[int, Feature] = {}
    for b in balances:
        grouped[b.feature_id].append(b)
        features[b.feature_id] = b.feature
    ordered = sorted(grouped, key=lambda pk: features[pk].feature_id)
    return {features[pk]: grouped[pk] for pk in ordered}


def track_json(
    *,
    customer: Customer,
    feature: Feature,
    value: Decimal,
    balances: list[Balance],
    event_name: str | None = None,
    prices: dict[int, Price | None] | None = None,
    reached: dict[Feature, list[Balance]] | None = None,
    entity_id: str | None = None,
) -> dict:
    """The answer to a track: the customer's balance of the feature after it. `reached`: every feature the
    track reached with its balances, when more than the tracked feature (an event name counted by several,
    credit systems drawn from): then `balances` has each, and `balance` is null if several were tracked."""
    answer = {
        "customer_id": customer.customer_id,
        "value": to_number(value),
        "balance": balance_json(FeatureBalance.of(feature, balances), prices) if balances else None,
    }
    if reached and len(reached) > 1:
        answer["balances"] = {
            f.feature_id: balance_json(FeatureBalance.of(f, group), prices) if group else None
            for f, group in reached.items()
        }
    if event_name:
        answer["event_name"] = event_name
    if entity_id is not None:
        answer["entity_id"] = entity_id
    return answer


def check_json(
    *,
    customer: Customer,
    feature: Feature,
    required: Decimal,
    result: CheckResult,
    prices: dict[int, Price | None] | None = None,
    entity_id: str | None = None,
) -> dict:
    """The answer to balances.check: allowed, the balance that answered (a credit system's when its pool
    did; a flag for an on/off feature), and every metered balance the check looked at."""
    answered = result.answered_by or feature
    # Each feature's balance written once: the answering one appears as `balance` and in `balances`.
    looked = {f: fb.balances for f, fb in result.balances.items()}
    written = {
        f: balance_json(FeatureBalance.of(f, group), prices) if group else None
        for f, group in looked.items()
        if f.is_metered
    }
    group = looked.get(answered, [])
    balance, flag = None, None
    if group:
        if answered.type == FeatureType.BOOLEAN:
            flag = flag_json(answered, group)
        else:
            balance = written[answered]
    return {
        "allowed": result.allowed,
        "customer_id": customer.customer_id,
        "entity_id": entity_id,
        "required_balance": to_number(result.required if result.required is not None else required),
        "balance": balance,
        "flag": flag,
        "balances": {f.feature_id: answer for f, answer in written.items() if f.is_metered},
    }


def balance_row_json(balance: Balance, *, now) -> dict:
    """One balance as balances.list lists it: its breakdown, with whose it is, when it began and whether it is
    still active."""
    expired = balance.expires_at is not None and balance.expires_at <= now
    return {
        **breakdown_json(balance),
        "feature_id": balance.feature.feature_id,
        "status": "expired" if expired else "active",
        "rollovers": [],
        "customer_id": balance.customer.customer_id,
        "entity_id": None,
        "source": "customer",
        "created_at": ms(balance.created_at),
    }
