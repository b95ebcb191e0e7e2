"""The catalogue in Autumn's shapes: a plan with its items and prices, a feature, the rewards."""

from __future__ import annotations

from autumn_admin.api.serializers.legacy import legacy_feature_type
from billing.catalogue.specs import FeatureChange, PlanChange
from billing.models import Feature, FeatureType, Interval, Product, ProductItem, Reward, RewardType, UsageType
from billing.plan_eligibility import Eligibility
from billing.quantities import to_number
from billing.shapes.units import major_units, ms


def _plan_price(product: Product) -> dict | None:
    """The plan's fixed price: recurring, else a one-off one; None for a plan without a fixed price."""
    fixed = [p for p in product.prices.all() if p.type == "fixed"]
    price = product.recurring_price or (fixed[0] if fixed else None)
    if price is None:
        return None
    return {
        "amount": major_units(price.amount, price.currency),
        "interval": price.interval,
        "interval_count": price.interval_count,
    }


def _item_json(product: Product, item: ProductItem) -> dict:
    feature = item.feature
    # Usage beyond the allowance is charged by its usage price; the usage limit caps it (Autumn's max_purchase).
    price = product.item_usage_price(item)
    max_purchase = item.usage_limit - item.included if price and item.usage_limit is not None else None
    return {
        "feature_id": feature.feature_id,
        "feature": {
            "id": feature.feature_id,
            "name": feature.name,
            "type": legacy_feature_type(feature),
            "display": None,
            "credit_schema": None,
            "archived": feature.archived,
        },
        "included": to_number(item.included),
        "unlimited": item.unlimited,
        "reset": {"interval": item.interval, "interval_count": item.interval_count}
        if item.interval != Interval.LIFETIME and feature.type != FeatureType.BOOLEAN
        else None,
        "price": {
            "amount": major_units(price.amount, price.currency),
            "interval": price.interval,
            "interval_count": price.interval_count,
            "billing_units": to_number(price.billing_units),
            "billing_method": "usage_based",
            "max_purchase": to_number(max_purchase),
        }
        if price
        else None,
    }


def _eligibility_json(e: Eligibility) -> dict:
    answer = {"trial_available": e.trial_available, "canceling": e.canceling, "trialing": e.trialing}
    if e.status is not None:  # the key is left out, not null, for a plan the customer doesn't have
        answer["status"] = e.status
    return {**answer, "attach_action": e.attach_action}


def plan_json(product: Product, env: str, eligibility: Eligibility | None = None) -> dict:
    """A catalogue product read with its items (and their features) and prices prefetched."""
    answer = {
        "id": product.product_id,
        "name": product.name,
        "description": product.description or None,
        "group": product.group or None,
        "version": product.version,
        "add_on": product.is_add_on,
        "auto_enable": product.is_default,
        "price": _plan_price(product),
        "items": [_item_json(product, item) for item in product.items.all()],
        "free_trial": {
            "duration_length": product.trial_length,
            "duration_type": product.trial_unit,
            "card_required": product.trial_card_required,
            "on_end": "bill",
        }
        if product.trial_length
        else None,
        "created_at": ms(product.created_at),
        "env": env,
        "archived": product.archived,
        "base_variant_id": None,
        "config": {"ignore_past_due": False},
        "metadata": {},
    }
    if eligibility is not None:
        answer["customer_eligibility"] = _eligibility_json(eligibility)
    return answer


def feature_json(feature: Feature) -> dict:
    """A feature read with its credit schema (and their metered features) prefetched."""
    return {
        "id": feature.feature_id,
        "name": feature.name,
        "type": feature.type,
        # Used up and reset (single use, credits), rather than allocated (seats) or on/off.
        "consumable": feature.type == FeatureType.CREDIT_SYSTEM
        or (feature.type == FeatureType.METERED and feature.usage_type != UsageType.CONTINUOUS_USE),
        "event_names": list(feature.event_names or []),
        "credit_schema": [
            {"metered_feature_id": c.metered_feature.feature_id, "credit_cost": to_number(c.credit_cost)}
            for c in feature.credit_schema.all()
        ]
        if feature.type == FeatureType.CREDIT_SYSTEM
        else [],
        "display": {"singular": feature.unit_label or None, "plural": None},
        "archived": feature.archived,
    }


def _duration_json(reward: Reward) -> dict:
    return {"type": reward.duration, "length": reward.duration_months if reward.duration == "months" else None}


def coupon_json(reward: Reward) -> dict:
    """A discount: percent off, or (fixed) money off in major units."""
    percentage = reward.type == RewardType.PERCENTAGE_DISCOUNT
    return {
        "id": reward.reward_id,
        "name": reward.name,
        "type": reward.type,
        "value": to_number(reward.value) if percentage else major_units(int(reward.value), reward.currency),
        "duration": _duration_json(reward),
        "plan_ids": None,
        "promo_codes": [
            {"code": code, "global_max_redemption": None, "first_time_transaction": None}
            for code in reward.promo_codes or []
        ],
        "created_at": ms(reward.created_at),
    }


def feature_grant_json(reward: Reward) -> dict:
    """A grant of `value` units of one feature, for some months or until removed."""
    months = reward.duration_months if reward.duration == "months" else None
    return {
        "id": reward.reward_id,
        "name": reward.name,
        "grants": [
            {
                "feature_id": reward.grant_feature.feature_id,
                "included": to_number(reward.value),
                "expiry": {"type": "month", "length": months} if months else None,
            }
        ]
        if reward.grant_feature_id
        else [],
        "promo_codes": [{"code": code, "max_uses": None} for code in reward.promo_codes or []],
        "created_at": ms(reward.created_at),
    }


def feature_change_json(change: FeatureChange, feature: Feature | None) -> dict:
    return {
        "feature_id": change.feature_id,
        "feature": feature_json(feature) if feature is not None else None,
        "action": change.action,
        "will_archive": change.will_archive,
        "blocked": False,
        "blocked_reason": None,
        "previous_attributes": change.previous,
    }


def plan_change_json(change: PlanChange, env: str, resolved: dict | None) -> dict:
    """One plan of catalog.preview_update: what would happen to it, for the asking environment."""
    return {
        "plan_id": change.plan_id,
        "version": change.current.version if change.current is not None else None,
        "plan": resolved,
        "action": change.action,
        "will_archive": change.will_archive,
        "has_customers": change.customer_count > 0,
        "customer_count": change.customer_count,
        "versionable": change.versionable,
        "customize": None,
        "previous_attributes": change.previous,
        "item_changes": change.item_changes,
        "license_changes": [],
        "license_parents": [],
        "variants": [],
        "other_versions": [],
    }
