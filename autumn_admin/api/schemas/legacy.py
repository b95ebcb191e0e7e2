"""The shapes of API 1.2: the REST forms of customers (with `products` and `features`) and /v1/attach."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.billing import Url
from autumn_admin.api.schemas.common import CustomerId, Number, Omittable, Params, PlanVersion, Slug
from autumn_admin.api.schemas.customers import CustomerFields, CustomerOut

# --- requests -----------------------------------------------------------------------------------


class LegacyAttachParams(Params):
    customer_id: CustomerId
    product_id: Slug
    version: Omittable[PlanVersion] = None
    success_url: Url | None = None


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
