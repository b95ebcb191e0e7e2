"""The shapes of API 1.2: the REST forms of customers (with `products` and `features`), /v1/attach, and
/v1/check, /v1/track, /v1/usage and /v1/entitled."""

from __future__ import annotations

from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.balances import JsonObject, Quantity, TrackParams
from autumn_admin.api.schemas.billing import Url
from autumn_admin.api.schemas.common import (
    ENTITY_SCOPE_NOT_BUILT,
    NO_AUTO_CREATE,
    NO_ENTITIES,
    CustomerId,
    Number,
    Omittable,
    Params,
    PlanVersion,
    Slug,
    not_supported_fields,
)
from autumn_admin.api.schemas.customers import CustomerFields, CustomerOut

# --- requests -----------------------------------------------------------------------------------


# What the 1.2 attach carries and this server does not build; a value that asks for something is refused.
LegacyAttachNotBuilt = not_supported_fields(
    "LegacyAttachNotBuilt",
    {
        "product_ids": "attach one product at a time here (product_id)",
        "entity_id": f"{ENTITY_SCOPE_NOT_BUILT}; leave entity_id out",
        "entity_data": ENTITY_SCOPE_NOT_BUILT,
        "customer_data": "a customer is created first, with POST /customers",
        "options": "prepaid quantities are not built",
        "is_custom": "a custom plan is made on the dashboard (Customize), not by attach",
        "items": "a custom plan is made on the dashboard (Customize), not by attach",
        "force_checkout": "a checkout is offered when payment is required",
        "invoice": "invoicing options are not built: Stripe Checkout bills the plan's price",
        "checkout_session_params": "invoicing options are not built: Stripe Checkout bills the plan's price",
        "setup_payment": "a checkout is offered when payment is required",
        "reward": "discounts are given as rewards (coupons), not by attach",
        "metadata": "an attach carries no metadata",
    },
)


class LegacyAttachParams(LegacyAttachNotBuilt):
    customer_id: CustomerId
    product_id: Slug
    version: Omittable[PlanVersion] = None
    success_url: Url | None = None


class LegacyTrackParams(TrackParams):
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None, description="A track repeated with the same key is recorded once."
    )
    overage_behavior: Literal["cap", "reject"] | None = Field(
        None,
        description="cap (default): the balance stops at 0 and the event keeps the full value; reject: "
        "nothing is tracked when the balance doesn't cover `value`.",
    )


class LegacyUsageParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    entity_id: NO_ENTITIES = None
    customer_data: NO_AUTO_CREATE = None
    value: Quantity = Field(description="The usage to set: the balance becomes granted − value.")


class LegacyEntitledParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    entity_id: NO_ENTITIES = None
    customer_data: NO_AUTO_CREATE = None
    required_quantity: Omittable[Quantity] = None
    event_data: JsonObject | None = Field(
        None, description="When given and allowed, required_quantity is tracked with these as the event's properties."
    )


class LegacyCreateCustomerParams(CustomerFields):
    id: CustomerId


class LegacyUpdateCustomerParams(CustomerFields):
    id: CustomerId | None = Field(None, description="A new id for the customer.")


# --- responses ----------------------------------------------------------------------------------


class LegacyProductOut(Schema):
    id: str
    name: str | None
    group: str | None
    status: Literal["active", "expired", "scheduled", "trialing", "past_due"]
    canceled_at: Number | None
    started_at: Number
    is_default: bool
    is_add_on: bool
    version: Number | None
    stripe_subscription_ids: list[str] | None
    current_period_start: Number | None
    current_period_end: Number | None
    quantity: Number


class LegacyFeatureOut(Schema):
    id: str
    type: Literal["static", "boolean", "single_use", "continuous_use", "credit_system"]
    name: str | None
    interval: str | None
    interval_count: Number | None
    unlimited: bool | None
    balance: Number | None
    usage: Number | None
    included_usage: Number | None
    next_reset_at: Number | None
    overage_allowed: bool | None
    usage_limit: Number | None


class LegacyCustomerOut(CustomerOut):
    """The customer as both API versions describe it: the 1.2 `products` and `features` as well."""

    products: list[LegacyProductOut]
    features: dict[str, LegacyFeatureOut]


# An alias: a field named `list` would shadow the builtin inside its class body.
LegacyCustomerOutList = list[LegacyCustomerOut]


class LegacyCustomerListOut(Schema):
    list: LegacyCustomerOutList
    total: int
    limit: int
    offset: int


class LegacyAttachOut(Schema):
    success: bool
    customer_id: str
    product_ids: list[str]
    code: Literal["new_product_attached", "checkout_created"]
    message: str
    checkout_url: str | None


LegacyInterval = Literal["lifetime", "minute", "hour", "day", "week", "month", "quarter", "semi_annual", "year"]


class LegacyBreakdownOut(Schema):
    interval: LegacyInterval | None
    interval_count: Number | None
    balance: Number | None
    usage: Number | None
    included_usage: Number | None
    next_reset_at: Number | None
    usage_limit: Number | None
    overage_allowed: bool | None


class LegacyCheckOut(Schema):
    allowed: bool
    code: Literal["feature_found"]
    customer_id: str
    feature_id: str
    entity_id: str | None
    required_balance: Number
    interval: LegacyInterval | Literal["multiple"] | None
    interval_count: Number | None
    unlimited: bool | None
    balance: Number | None
    usage: Number | None
    included_usage: Number | None
    next_reset_at: Number | None
    overage_allowed: bool | None
    breakdown: list[LegacyBreakdownOut] | None
    usage_limit: Number | None


class LegacyTrackOut(Schema):
    customer_id: str
    feature_id: str = Field(None, description="Absent when tracked by event_name.")
    event_name: str = Field(None, description="Absent when tracked by feature_id.")


class EntitledBalanceOut(Schema):
    feature_id: str
    balance: Number | None
    required: Number | None
    unlimited: bool


class LegacyEntitledOut(Schema):
    allowed: bool
    balances: list[EntitledBalanceOut]
