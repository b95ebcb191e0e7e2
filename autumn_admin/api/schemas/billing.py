"""Attach: which plan billing.attach puts on a customer, and the checkout it may answer with."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import (
    ENTITY_SCOPE_NOT_BUILT,
    CustomerId,
    Omittable,
    Params,
    PlanVersion,
    Slug,
    not_supported,
    not_supported_fields,
)

Url = Annotated[str, Field(min_length=1, max_length=2000)]

_SCHEDULING = "scheduling a plan change is not built: it takes effect as the plan change rules say"
_INVOICING = "invoicing options are not built: Stripe Checkout or the subscription bills the plan's price"
_SUBSCRIPTION = "which Stripe subscription a plan goes on is not chosen by request"
# What Autumn's plan changes (billing.attach, billing.update and their previews) carry and this server
# does not build; sent with a value that asks for something, each is refused by name.
_PLAN_CHANGE = {
    "entity_id": f"{ENTITY_SCOPE_NOT_BUILT}; leave entity_id out",
    "feature_quantities": "prepaid quantities are not built",
    "license_quantities": "licenses are not built",
    "customize": "a custom plan is made on the dashboard (Customize), not by a plan change",
    "free_trial": "a plan's own free trial applies; another is not built",
    "invoice_mode": _INVOICING,
    "custom_line_items": _INVOICING,
    "add_lines": _INVOICING,
    "remove_lines": _INVOICING,
    "proration_behavior": "the proration of a plan change is not chosen by request",
    "subscription_id": _SUBSCRIPTION,
    "discounts": "discounts are given as rewards (coupons), not by a plan change",
    "remove_discounts": "discounts are given as rewards (coupons), not by a plan change",
    "billing_cycle_anchor": _SCHEDULING,
    "carry_over_usages": "carrying usage over to the new plan is not built",
    "no_billing_changes": "a plan change without billing is a free grant on the dashboard",
}
_ATTACH = {
    **_PLAN_CHANGE,
    "billing_details": _INVOICING,
    "currency": "a plan is priced in one currency",
    "tax": _INVOICING,
    "tax_rate_id": _INVOICING,
    "checkout_session_params": _INVOICING,
    "long_lived_checkout": _INVOICING,
    "metadata": "a plan change carries no metadata",
    "new_billing_subscription": _SUBSCRIPTION,
    "processor_subscription_id": _SUBSCRIPTION,
    "carry_over_balances": "carrying balances over to the new plan is not built",
    "enable_plan_immediately": _SCHEDULING,
    "plan_schedule": _SCHEDULING,
    "starts_at": _SCHEDULING,
    "ends_at": _SCHEDULING,
    "remove_plan_ids": "removing other plans by attach is not built: cancel them with billing.update",
}
_UPDATE = {
    **_PLAN_CHANGE,
    "recalculate_balances": "the balances follow the plan change rules",
    "refund_last_payment": "refunds are made in Stripe, not by a plan change",
    "subscription_params": _SUBSCRIPTION,
}
# A checkout is offered when payment is required: redirect_mode "if_required" (the clients' default).
_REDIRECT = not_supported('a checkout is offered when payment is required ("if_required")', harmless=("if_required",))
AttachNotBuilt = not_supported_fields("AttachNotBuilt", _ATTACH)
UpdateNotBuilt = not_supported_fields("UpdateNotBuilt", _UPDATE)


class AttachParams(AttachNotBuilt):
    customer_id: CustomerId
    plan_id: Slug
    version: Omittable[PlanVersion] = None
    success_url: Url | None = None
    redirect_mode: _REDIRECT = None


class AttachOut(Schema):
    customer_id: str
    payment_url: str | None
    checkout_url: str | None = Field(description="The same as payment_url, under the name older clients read.")
    invoice: dict[str, Any] | None
    required_action: dict[str, Any] | None


class PreviewAttachParams(AttachNotBuilt):
    customer_id: CustomerId
    plan_id: Slug
    version: Omittable[PlanVersion] = None
    success_url: Url | None = Field(None, description="Where billing.attach would send the customer back.")
    redirect_mode: _REDIRECT = None


class UpdateParams(UpdateNotBuilt):
    customer_id: CustomerId
    plan_id: Slug | None = None
    version: Omittable[PlanVersion] = None
    cancel_action: Literal["cancel_immediately", "cancel_end_of_cycle", "uncancel"] | None = None
    success_url: Url | None = None
    redirect_mode: _REDIRECT = None


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
