"""Attach: which plan billing.attach puts on a customer, and the checkout it may answer with."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import CustomerId, Omittable, Params, PlanVersion, Slug, not_supported

Url = Annotated[str, Field(min_length=1, max_length=2000)]


class AttachParams(Params):
    customer_id: CustomerId
    plan_id: Slug
    version: Omittable[PlanVersion] = None
    success_url: Url | None = None


class AttachOut(Schema):
    customer_id: str
    payment_url: str | None
    checkout_url: str | None = Field(description="The same as payment_url, under the name older clients read.")
    invoice: dict[str, Any] | None
    required_action: dict[str, Any] | None


class PreviewAttachParams(Params):
    customer_id: CustomerId
    plan_id: Slug
    version: Omittable[PlanVersion] = None


class UpdateParams(Params):
    customer_id: CustomerId
    plan_id: Slug | None = None
    version: Omittable[PlanVersion] = None
    cancel_action: Literal["cancel_immediately", "cancel_end_of_cycle", "uncancel"] | None = None
    success_url: Url | None = None


class PortalParams(Params):
    customer_id: CustomerId
    return_url: Url | None = None
    configuration_id: not_supported("the portal opens with the Stripe account's default configuration") = None


class LegacyPortalParams(Params):
    return_url: Url | None = None


class LegacyCancelParams(Params):
    customer_id: CustomerId
    product_id: Slug
    cancel_immediately: Omittable[bool] = False


class PortalOut(Schema):
    customer_id: str
    url: str


class LegacyCancelOut(Schema):
    success: bool
    customer_id: str
    product_id: str


class UpdateOut(Schema):
    customer_id: str
    payment_url: str | None
    invoice: dict[str, Any] | None
    required_action: dict[str, Any] | None


class LineItemOut(Schema):
    display_name: str
    description: str
    subtotal: float
    total: float
    plan_id: str
    feature_id: str | None
    quantity: float


class FeatureQuantityOut(Schema):
    feature_id: str
    quantity: float


class PlanChangeOut(Schema):
    plan_id: str
    feature_quantities: list[FeatureQuantityOut]
    effective_at: int | None
    canceled_at: int | None
    expires_at: int | None


class NextCycleOut(Schema):
    starts_at: int
    subtotal: float
    total: float
    line_items: list[LineItemOut]
    usage_line_items: list[dict[str, Any]]


class PreviewOut(Schema):
    customer_id: str
    line_items: list[LineItemOut]
    subtotal: float
    total: float
    currency: str
    incoming: list[PlanChangeOut]
    outgoing: list[PlanChangeOut]
    next_cycle: NextCycleOut | None


class PreviewAttachOut(PreviewOut):
    redirect_to_checkout: bool
    checkout_type: Literal["stripe_checkout"] | None


class PreviewUpdateOut(PreviewOut):
    intent: Literal["update_plan", "cancel_immediately", "cancel_end_of_cycle", "uncancel", "none"]
