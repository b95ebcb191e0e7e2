"""A customer in the shape of API 1.2 as well: its `products` and `features` beside today's keys."""

from __future__ import annotations

from decimal import Decimal

from billing.engine.decide import CheckResult, FeatureBalance
from billing.models import Balance, CustomerProduct, Feature, FeatureType, UsageType
from billing.quantities import to_number
from billing.shapes.balances import grouped_balances
from billing.shapes.customers import customer_json
from billing.shapes.units import ms
from customers.models import Customer


def legacy_product_json(cp: CustomerProduct) -> dict:
    product = cp.product
    return {
        "id": product.product_id,
        "name": product.name,
        "group": product.group or None,
        "status": cp.status,
        "canceled_at": ms(cp.canceled_at),
        "started_at": ms(cp.started_at),
        "is_default": product.is_default,
        "is_add_on": product.is_add_on,
        "version": product.version,
        "stripe_subscription_ids": [cp.stripe_subscription_id] if cp.stripe_subscription_id else [],
        "current_period_start": ms(cp.current_period_start),
        "current_period_end": ms(cp.current_period_end),
        "quantity": cp.quantity,
    }


def legacy_feature_type(feature: Feature) -> str:
    if feature.type == FeatureType.BOOLEAN:
        return "boolean"
    if feature.type == FeatureType.CREDIT_SYSTEM:
        return "credit_system"
    return feature.usage_type or UsageType.SINGLE_USE


def legacy_feature_json(fb: FeatureBalance) -> dict:
    intervals = {(b.interval, b.interval_count) for b in fb.balances}
    interval, count = next(iter(intervals)) if len(intervals) == 1 else ("multiple", None)
    return {
        "id": fb.feature.feature_id,
        "type": legacy_feature_type(fb.feature),
        "name": fb.feature.name,
        "interval": interval,
        "interval_count": count,
        "unlimited": fb.unlimited,
        "balance": to_number(fb.remaining),
        "usage": to_number(fb.usage),
        "included_usage": to_number(fb.granted),
        "next_reset_at": ms(fb.next_reset_at),
        "overage_allowed": fb.overage_allowed,
        "usage_limit": to_number(fb.usage_limit),
    }


def legacy_customer_json(customer: Customer) -> dict:
    """A customer read by `load_customer` or `load_customers`: `customer_json`, plus the 1.2 keys."""
    features = grouped_balances(customer.api_balances)
    return {
        **customer_json(customer),
        "products": [legacy_product_json(cp) for cp in customer.api_products],
        "features": {f.feature_id: legacy_feature_json(FeatureBalance.of(f, group)) for f, group in features.items()},
    }


def _legacy_balance_json(balance: Balance) -> dict:
    return {
        "interval": balance.interval,
        "interval_count": balance.interval_count,
        "balance": to_number(balance.remaining),
        "usage": to_number(balance.usage),
        "included_usage": to_number(balance.granted),
        "next_reset_at": ms(balance.next_reset_at),
        "usage_limit": to_number(balance.usage_limit),
        "overage_allowed": balance.overage_allowed,
    }


def legacy_check_answer(*, customer: Customer, feature: Feature, result: CheckResult, required: Decimal) -> dict:
    """The 1.2 check's answer to `result`: in the terms of the balance that answered (a credit system's when
    its pool covered the use), the operation's and the lean path's alike."""
    return legacy_check_json(
        customer=customer,
        feature=result.answered_by or feature,
        allowed=result.allowed,
        required=result.required if result.required is not None else required,
        fb=result.balance,
    )


def legacy_check_json(
    *, customer: Customer, feature: Feature, allowed: bool, required: Decimal, fb: FeatureBalance | None
) -> dict:
    """The 1.2 check: the feature's balance in the 1.2 keys (null where the customer has none of it), and
    each balance in `breakdown` when there are several."""
    if fb is not None:
        figures = {k: v for k, v in legacy_feature_json(fb).items() if k not in ("id", "type", "name")}
        breakdown = [_legacy_balance_json(b) for b in fb.balances] if len(fb.balances) > 1 else None
    else:
        figures = dict.fromkeys(
            ("interval", "interval_count", "unlimited", "balance", "usage", "included_usage", "next_reset_at"),
        )
        figures.update(overage_allowed=None, usage_limit=None)
        breakdown = None
    if feature.type == FeatureType.BOOLEAN and fb is not None:
        figures.update(balance=None, usage=None, included_usage=None)
    return {
        "allowed": allowed,
        "code": "feature_found",
        "customer_id": customer.customer_id,
        "feature_id": feature.feature_id,
        "entity_id": None,
        "required_balance": to_number(required),
        **figures,
        "breakdown": breakdown,
    }


def entitled_json(*, feature: Feature, allowed: bool, required: Decimal, fb: FeatureBalance | None) -> dict:
    """The oldest form of check: a boolean or unlimited feature has no balance and no requirement."""
    metered = feature.type != FeatureType.BOOLEAN and not (fb and fb.unlimited)
    return {
        "allowed": allowed,
        "balances": [
            {
                "feature_id": feature.feature_id,
                "balance": to_number(fb.remaining) if metered and fb else None,
                "required": to_number(required) if metered else None,
                "unlimited": bool(fb and fb.unlimited),
            }
        ],
    }
