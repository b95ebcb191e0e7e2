"""The plans and features of the catalogue: what plans.list/get and features.list/get read, the plan and the
feature as they answer, and what features.* and plans.* (one feature or plan at a time) send. The catalogue is
one for both environments: a key of either reads it all. The rewards are in schemas/rewards.py, the whole
catalogue at once (catalog.*) in schemas/catalogue_sync.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import CustomerId, Number, Omittable, Params, PlanVersion, Slug, not_supported

PriceIntervalOut = Literal["one_off", "week", "month", "quarter", "semi_annual", "year"]
ResetIntervalOut = Literal["one_off", "minute", "hour", "day", "week", "month", "quarter", "semi_annual", "year"]
# --- requests -----------------------------------------------------------------------------------

FLAT_COST_ONLY = not_supported("only a flat credit cost per unit is built")
FLAT_PRICE_ONLY = not_supported("only a flat per-unit price is built", harmless=([], ""))


class ListPlansParams(Params):
    customer_id: CustomerId | None = None
    include_archived: Omittable[bool] = False
    all_versions: Omittable[bool] = False


class GetPlanParams(Params):
    plan_id: Slug
    version: Omittable[PlanVersion] = None


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


class FreeTrialOut(Schema):
    duration_length: Number
    duration_type: Literal["day", "month", "year"]
    card_required: bool
    on_end: Literal["bill"]


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
    free_trial: FreeTrialOut | None
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


# --- catalogue writes: features.*, plans.* ---------------------------------------------------------


class FeatureDisplayIn(Params):
    singular: str | None = None
    plural: not_supported("a unit label has one form here (singular)") = None


class CreditCostIn(Params):
    metered_feature_id: Slug
    credit_cost: Number | None = None
    billing_units: Number | None = None
    tiers: FLAT_COST_ONLY = None
    tier_behavior: FLAT_COST_ONLY = None
    dimensions: FLAT_COST_ONLY = None
    multipliers: FLAT_COST_ONLY = None


class FeatureFieldsIn(Params):
    name: str | None = None
    type: Literal["boolean", "metered", "credit_system"] | None = None
    consumable: bool | None = None
    event_names: list[Annotated[str, Field(max_length=255)]] | None = None
    credit_schema: list[CreditCostIn] | None = None
    display: FeatureDisplayIn | None = None
    archived: bool | None = None


class CreateFeatureParams(FeatureFieldsIn):
    feature_id: Slug
    name: str
    type: Literal["boolean", "metered", "credit_system"]


class UpdateFeatureParams(FeatureFieldsIn):
    feature_id: Slug
    new_feature_id: Slug | None = None


class DeleteFeatureParams(Params):
    feature_id: Slug


class ResetIn(Params):
    interval: str
    interval_count: Number | None = None


class ItemPriceIn(Params):
    amount: Number | None = None
    interval: str | None = None
    interval_count: Number | None = None
    billing_units: Number | None = None
    billing_method: str | None = None
    max_purchase: Number | None = None
    tiers: FLAT_PRICE_ONLY = None
    tier_behavior: FLAT_PRICE_ONLY = None
    additional_currencies: FLAT_PRICE_ONLY = None


class PlanItemIn(Params):
    feature_id: Slug
    included: Number | None = None
    unlimited: bool | None = None
    reset: ResetIn | None = None
    price: ItemPriceIn | None = None
    entity_feature_id: not_supported(
        "a per-entity item is made in the admin (Products: an item's entity feature); plans.create/update don't take it"
    ) = None
    pooled: not_supported("pooled balances are not built", harmless=(False,)) = None
    rollover: not_supported("rollovers are not built") = None
    proration: not_supported("prepaid quantities (what proration applies to) are not built", harmless=({},)) = None


class PlanPriceIn(Params):
    amount: Number
    interval: str
    interval_count: Number | None = None
    additional_currencies: not_supported("a plan is priced in one currency", harmless=([],)) = None


class FreeTrialIn(Params):
    duration_length: Number
    duration_type: str | None = None
    card_required: bool | None = None
    on_end: str | None = None


class PlanFieldsIn(Params):
    name: str | None = None
    description: str | None = None
    group: str | None = None
    add_on: bool | None = None
    auto_enable: bool | None = None
    price: PlanPriceIn | None = None
    items: list[PlanItemIn] | None = None
    free_trial: FreeTrialIn | None = None
    licenses: not_supported("licenses are not built", harmless=([],)) = None
    billing_controls: not_supported("billing controls are not built", harmless=({},)) = None
    metadata: not_supported("plans carry no metadata", harmless=({},)) = None
    archived: bool | None = None


class CreatePlanParams(PlanFieldsIn):
    plan_id: Slug
    name: str


class UpdatePlanParams(PlanFieldsIn):
    plan_id: Slug
    version: Omittable[PlanVersion] = None
    new_plan_id: str | None = None
    disable_version: bool | None = None
    force_version: bool | None = None
    all_versions: bool | None = None
    migration: not_supported("migrations are not built; move customers with billing.update", harmless=({},)) = None
    variants: not_supported("plan variants are not built", harmless=([],)) = None


class DeletePlanParams(Params):
    plan_id: Slug
    all_versions: bool | None = None


class ArchiveParams(Params):
    archived: bool


class OrganizationOut(Schema):
    id: str
    name: str
    slug: str
    env: Literal["sandbox", "live"]
    created_at: Number | None
    default_currency: str
    stripe_connection: str
