"""Checking a desired state before anything is written: every bad field is a ServiceError naming it."""

from __future__ import annotations

import re
from dataclasses import replace

from billing.catalogue.specs import (
    DESCRIPTION_MAX,
    EVENT_NAMES_MAX,
    GROUP_MAX,
    NAME_MAX,
    PRICE_INTERVALS,
    RESET_INTERVALS,
    TRIAL_MAX,
    FeatureSpec,
    PlanSpec,
    refuse,
)
from billing.models import (
    SLUG_PATTERN,
    Feature,
    FeatureType,
    Interval,
    Product,
    TrialUnit,
)
from billing.quantities import MAX_ABS

# --- checking a desired state --------------------------------------------------------------------------


def check_id(where: str, value: str) -> None:

    if not value or len(value) > 255 or not re.match(SLUG_PATTERN, value):
        raise refuse(where, "must be 1 to 255 letters, digits, '_' or '-'")


def _check_text(where: str, value: str, limit: int, *, required: bool = False) -> None:
    if required and not value.strip():
        raise refuse(where, "is required")
    if len(value) > limit:
        raise refuse(where, f"must be at most {limit:,} characters")


def check_feature(where: str, spec: FeatureSpec, known_types: dict[str, str]) -> None:
    check_id(f"{where}.feature_id", spec.feature_id)
    _check_text(f"{where}.name", spec.name, NAME_MAX, required=True)
    if spec.type not in FeatureType.values:
        raise refuse(f"{where}.type", "must be boolean, metered or credit_system")
    if len(spec.event_names) > EVENT_NAMES_MAX or any(not n or len(n) > 255 for n in spec.event_names):
        raise refuse(f"{where}.event_names", f"at most {EVENT_NAMES_MAX} names of 1 to 255 characters")
    if spec.type == FeatureType.CREDIT_SYSTEM:
        if not spec.credit_schema:
            raise refuse(f"{where}.credit_schema", "a credit system needs at least one metered feature and its cost")
        seen = set()
        for n, cost in enumerate(spec.credit_schema):
            at = f"{where}.credit_schema[{n}]"
            if cost.metered_feature_id in seen:
                raise refuse(f"{at}.metered_feature_id", f"{cost.metered_feature_id} is listed twice")
            seen.add(cost.metered_feature_id)
            kind = known_types.get(cost.metered_feature_id)
            if kind is None:
                raise refuse(f"{at}.metered_feature_id", f"there is no feature {cost.metered_feature_id}")
            if kind != FeatureType.METERED:
                raise refuse(f"{at}.metered_feature_id", f"{cost.metered_feature_id} is not a metered feature")
            if cost.credit_cost <= 0:
                raise refuse(f"{at}.credit_cost", "must be more than 0")
    elif spec.credit_schema:
        raise refuse(f"{where}.credit_schema", "only a credit_system feature has a credit schema")


def check_plan(where: str, spec: PlanSpec, known_types: dict[str, str]) -> None:
    check_id(f"{where}.plan_id", spec.plan_id)
    _check_text(f"{where}.name", spec.name, NAME_MAX, required=True)
    _check_text(f"{where}.description", spec.description, DESCRIPTION_MAX)
    _check_text(f"{where}.group", spec.group, GROUP_MAX)
    if spec.price is not None:
        if spec.price.interval not in PRICE_INTERVALS:
            raise refuse(f"{where}.price.interval", f"must be one of {', '.join(PRICE_INTERVALS)}")
        if not 1 <= spec.price.interval_count <= 1000:
            raise refuse(f"{where}.price.interval_count", "must be between 1 and 1,000")
    if spec.free_trial is not None:
        trial = spec.free_trial
        if trial.unit not in TrialUnit.values:
            raise refuse(f"{where}.free_trial.duration_type", f"must be one of {', '.join(TrialUnit.values)}")
        if not 1 <= trial.length <= TRIAL_MAX[trial.unit]:
            raise refuse(
                f"{where}.free_trial.duration_length", f"must be between 1 and {TRIAL_MAX[trial.unit]} {trial.unit}s"
            )
    seen = set()
    for n, item in enumerate(spec.items):
        at = f"{where}.items[{n}]"
        if item.feature_id in seen:
            raise refuse(f"{at}.feature_id", f"{item.feature_id} is in the plan twice")
        seen.add(item.feature_id)
        kind = known_types.get(item.feature_id)
        if kind is None:
            raise refuse(f"{at}.feature_id", f"there is no feature {item.feature_id}")
        if kind == FeatureType.BOOLEAN and (item.interval != Interval.LIFETIME or item.usage_price or item.included):
            raise refuse(at, f"{item.feature_id} is a boolean feature: it has no allowance, reset or price")
        if item.interval not in Interval.values:
            raise refuse(f"{at}.reset.interval", f"must be one of {', '.join(RESET_INTERVALS)}")
        if not 1 <= item.interval_count <= 1000:
            raise refuse(f"{at}.reset.interval_count", "must be between 1 and 1,000")
        if item.included < 0 or item.included > MAX_ABS:
            raise refuse(f"{at}.included", "must be between 0 and 1,000,000,000,000,000")
        if item.usage_price is not None:
            if item.unlimited:
                raise refuse(f"{at}.price", "an unlimited item has no usage price")
            if item.usage_price.interval not in PRICE_INTERVALS:
                raise refuse(f"{at}.price.interval", f"must be one of {', '.join(PRICE_INTERVALS)}")
            if not 1 <= item.usage_price.interval_count <= 1000:
                raise refuse(f"{at}.price.interval_count", "must be between 1 and 1,000")
            if item.usage_price.billing_units <= 0:
                raise refuse(f"{at}.price.billing_units", "must be more than 0")
        if item.usage_limit is not None and item.usage_limit < item.included:
            raise refuse(f"{at}.price.max_purchase", "must not be negative")


def settled_feature(spec: FeatureSpec, current: Feature | None) -> FeatureSpec:
    """The spec with what it leaves as it is filled in from the stored feature."""
    return replace(
        spec,
        unit_label=spec.unit_label if spec.unit_label is not None else (current.unit_label if current else ""),
        archived=spec.archived if spec.archived is not None else (current.archived if current else False),
    )


def settled_plan(spec: PlanSpec, current: Product | None) -> PlanSpec:
    return replace(
        spec,
        description=spec.description if spec.description is not None else (current.description if current else ""),
        archived=spec.archived if spec.archived is not None else (current.archived if current else False),
    )
