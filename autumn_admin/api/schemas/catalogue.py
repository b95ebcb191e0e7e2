"""The catalogue: what plans.list/get, features.list/get and rewards.list read, and the plan, feature
and reward as they answer. The catalogue is one for both environments: a key of either reads it all."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, WithJsonSchema

from autumn_admin.api.schemas.common import CustomerId, Number, Omittable, Params, Slug

PriceIntervalOut = Literal["one_off", "week", "month", "quarter", "semi_annual", "year"]
ResetIntervalOut = Literal["one_off", "minute", "hour", "day", "week", "month", "quarter", "semi_annual", "year"]
PLAN_VERSION_MAX = 1_000_000


def _whole_version(value: Any) -> int:
    """A plan version: a whole number from 1, sent as 2 or, as autumn-sdk's float field sends it, 2.0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError("must be a whole number")
    if not 1 <= value <= PLAN_VERSION_MAX:
        raise ValueError(f"must be between 1 and {PLAN_VERSION_MAX:,}")
    return int(value)


WholeVersion = Annotated[
    Any,
    BeforeValidator(_whole_version),
    WithJsonSchema({"type": "number", "minimum": 1, "maximum": PLAN_VERSION_MAX, "multipleOf": 1}),
]

# --- requests -----------------------------------------------------------------------------------


class ListPlansParams(Params):
    customer_id: CustomerId | None = None
    include_archived: Omittable[bool] = False
    all_versions: Omittable[bool] = False


class GetPlanParams(Params):
    plan_id: Slug
    version: Omittable[WholeVersion] = None


class GetFeatureParams(Params):
    feature_id: Slug


# --- responses ----------------------------------------------------------------------------------


class PlanPriceOut(Schema):
    amount: Number
    interval: PriceIntervalOut
    interval_count: Number


class PlanFeatureOut(Schema):
    id: str
    name: str | None
    type: Literal["static", "boolean", "single_use", "continuous_use", "credit_system"]
    display: None
    credit_schema: None
    archived: bool | None


class ItemResetOut(Schema):
    interval: ResetIntervalOut
    interval_count: Number


class ItemPriceOut(Schema):
    amount: Number
    interval: PriceIntervalOut
    interval_count: Number
    billing_units: Number
    billing_method: Literal["prepaid", "usage_based"]
    max_purchase: Number | None


class PlanItemOut(Schema):
    feature_id: str
    feature: PlanFeatureOut
    included: Number
    unlimited: bool
    reset: ItemResetOut | None
    price: ItemPriceOut | None


class PlanConfigOut(Schema):
    ignore_past_due: bool


class EligibilityOut(Schema):
    trial_available: bool
    status: Literal["active", "scheduled"] | None = None
    canceling: bool
    trialing: bool
    attach_action: Literal["activate", "upgrade", "downgrade", "none", "purchase"]


class PlanOut(Schema):
    id: str
    name: str
    description: str | None
    group: str | None
    version: Number
    add_on: bool
    auto_enable: bool
    price: PlanPriceOut | None
    items: list[PlanItemOut]
    created_at: Number
    env: Literal["sandbox", "live"]
    archived: bool
    base_variant_id: str | None
    config: PlanConfigOut
    metadata: dict[str, Any]
    customer_eligibility: EligibilityOut = None


# An alias: a field named `list` would shadow the builtin inside its class body.
PlanOutList = list[PlanOut]


class PlanListOut(Schema):
    list: PlanOutList


class FeatureDisplayOut(Schema):
    singular: str | None
    plural: str | None


class CreditCostOut(Schema):
    metered_feature_id: str
    credit_cost: Number


class FeatureOut(Schema):
    id: str
    name: str
    type: Literal["boolean", "metered", "credit_system"]
    consumable: bool
    event_names: list[str]
    credit_schema: list[CreditCostOut]
    display: FeatureDisplayOut
    archived: bool


FeatureOutList = list[FeatureOut]


class FeatureListOut(Schema):
    list: FeatureOutList


class DurationOut(Schema):
    type: Literal["one_off", "months", "forever"]
    length: Number | None


class CouponCodeOut(Schema):
    code: str
    global_max_redemption: Number | None
    first_time_transaction: bool | None


class CouponOut(Schema):
    id: str
    name: str | None
    type: Literal["percentage_discount", "fixed_discount"]
    value: Number
    duration: DurationOut
    plan_ids: list[str] | None
    promo_codes: list[CouponCodeOut]
    created_at: Number


class GrantExpiryOut(Schema):
    type: Literal["day", "week", "month", "year"]
    length: int


class GrantOut(Schema):
    feature_id: str
    included: Number | None
    expiry: GrantExpiryOut | None


class GrantCodeOut(Schema):
    code: str
    max_uses: Number | None


class FeatureGrantOut(Schema):
    id: str
    name: str | None
    grants: list[GrantOut]
    promo_codes: list[GrantCodeOut]
    created_at: Number


class RewardListOut(Schema):
    coupons: list[CouponOut]
    feature_grants: list[FeatureGrantOut]
