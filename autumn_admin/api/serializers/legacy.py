"""A customer in the shape of API 1.2 as well: its `products` and `features` beside today's keys."""

from __future__ import annotations

from autumn_admin.api.serializers.balances import grouped_balances
from autumn_admin.api.serializers.customers import customer_json
from autumn_admin.api.units import ms
from billing.models import CustomerProduct, Feature, FeatureType, UsageType
from billing.quantities import to_number
from billing.services.balances import FeatureBalance
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
