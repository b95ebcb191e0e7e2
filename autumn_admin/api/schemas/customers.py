"""Customers: what the customer operations read, and the customer as they answer it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

from autumn_admin.api.schemas.balances import BalanceOut, FlagOut
from autumn_admin.api.schemas.common import (
    NO_ENTITIES,
    CustomerId,
    Number,
    Omittable,
    PageParams,
    Params,
    PlanVersion,
    Slug,
    not_supported,
    whole_number,
)
from autumn_admin.api.schemas.invoices import InvoiceOut
from customers.errors import ServiceError
from customers.validation import TEXT_LIMITS, validate_metadata

Name = Annotated[str, Field(max_length=TEXT_LIMITS["name"])]
Email = Annotated[str, Field(max_length=TEXT_LIMITS["email"])]
Fingerprint = Annotated[str, Field(max_length=TEXT_LIMITS["fingerprint"])]


def _metadata(value: dict) -> dict:
    try:
        return validate_metadata(value)  # the dashboard's limits too
    except ServiceError as exc:
        raise ValueError(exc.message.removeprefix("metadata ")) from None


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata)]

# --- requests -----------------------------------------------------------------------------------

CustomerExpand = Literal["invoices", "rewards", "entities"]


class CustomerFields(Params):
    name: Name | None = Field(None, description="The customer's name; null clears it.")
    email: Email | None = Field(None, description="The customer's email address; null clears it.")
    fingerprint: Fingerprint | None = Field(None, description="A device or account fingerprint; null clears it.")
    metadata: Metadata | None = None
    send_email_receipts: Omittable[bool] = None
    # What Autumn's customer requests also carry and this server does not do (yet).
    billing_controls: not_supported("billing controls (spend limits, auto top-ups) are not built") = None
    create_in_stripe: not_supported("creating a Stripe customer on request is not built", harmless=(False,)) = None
    auto_enable_plan_id: not_supported("a new customer gets the default plan; attach others with billing.attach") = None
    stripe_id: not_supported("linking a Stripe customer by request is not built") = None
    currency: not_supported("a customer's currency is not built (prices carry their own)") = None
    config: not_supported("customer config is not built") = None
    billing_details: not_supported("billing details (address, tax ids) are not built") = None


class GetOrCreateCustomerParams(CustomerFields):
    customer_id: CustomerId
    expand: list[CustomerExpand] | None = None


class GetCustomerParams(Params):
    customer_id: CustomerId
    expand: list[CustomerExpand] | None = None


class PlanFilter(Params):
    id: Slug
    versions: Omittable[list[PlanVersion]] = None


class ListCustomersParams(PageParams):
    search: Annotated[str, Field(max_length=255)] | None = None
    plans: list[PlanFilter] | None = None
    subscription_status: Literal["active", "scheduled"] | None = None
    created_at_range: not_supported("listing customers by when they were created is not built") = None
    processors: not_supported("every customer here bills through Stripe, if at all", harmless=([],)) = None
    sort_order: Literal["asc", "desc"] = "desc"


HeldStatus = Literal["active", "scheduled", "past_due", "expired"]


class ListHeldParams(PageParams):
    """subscriptions.list and purchases.list: the plans customers hold, across the key's environment or of one
    customer, newest first. `statuses` defaults to active and scheduled; past_due matches overdue plans (which
    read as active with past_due true)."""

    customer_id: CustomerId | None = None
    entity_id: NO_ENTITIES = None
    statuses: list[HeldStatus] | None = None
    plan_id: Slug | None = None
    limit: Omittable[whole_number(1, 200)] = 50


class UpdateCustomerParams(CustomerFields):
    customer_id: CustomerId
    new_customer_id: CustomerId | None = None
    metadata: Metadata | None = Field(
        None,
        description="Merged into the customer's metadata: a key set to null is removed. "
        "null for the whole object clears it.",
    )


class DeleteCustomerParams(Params):
    customer_id: CustomerId
    delete_in_stripe: Omittable[bool] = False


# --- responses ----------------------------------------------------------------------------------


class SubscriptionOut(Schema):
    id: str
    plan_id: str
    auto_enable: bool
    add_on: bool
    status: Literal["active", "scheduled"]
    past_due: bool
    canceled_at: Number | None
    expires_at: Number | None
    trial_ends_at: Number | None
    started_at: Number
    current_period_start: Number | None
    current_period_end: Number | None
    quantity: Number


class PurchaseOut(Schema):
    plan_id: str
    expires_at: Number | None
    started_at: Number
    quantity: Number


class DiscountOut(Schema):
    id: str
    name: str
    type: Literal["percentage_discount", "fixed_discount", "free_product", "feature_grant"]
    discount_value: Number
    duration_type: Literal["one_off", "months", "forever"]
    duration_value: Number | None
    currency: str | None
    start: Number | None
    end: Number | None


class RewardsOut(Schema):
    discounts: list[DiscountOut]


class EntityBaseOut(Schema):
    """An entity as customers.get lists it (expand "entities"), and the start of entities.get's answer."""

    id: str | None
    name: str | None
    customer_id: str | None
    feature_id: str | None
    created_at: Number
    env: Literal["sandbox", "live"]


class CustomerOut(Schema):
    id: str | None
    name: str | None
    email: str | None
    created_at: Number
    fingerprint: str | None
    stripe_id: str | None
    env: Literal["sandbox", "live"]
    metadata: dict[str, Any]
    send_email_receipts: bool
    billing_controls: dict[str, Any]
    subscriptions: list[SubscriptionOut]
    purchases: list[PurchaseOut]
    licenses: list[dict[str, Any]]
    balances: dict[str, BalanceOut]
    flags: dict[str, FlagOut]
    invoices: list[InvoiceOut] | None = Field(None, description='With expand: ["invoices"].')
    rewards: RewardsOut | None = Field(None, description='With expand: ["rewards"].')
    entities: list[EntityBaseOut] | None = Field(None, description='With expand: ["entities"].')


# An alias: a field named `list` would shadow the builtin inside its class body.
CustomerOutList = list[CustomerOut]


class CustomerListOut(Schema):
    list: CustomerOutList
    next_cursor: str | None


class HeldRowFields(Schema):
    status: Literal["active", "scheduled", "expired"]
    customer_id: str
    entity_id: str | None
    created_at: Number
    scope: Literal["customer", "entity"]


class SubscriptionRowOut(SubscriptionOut, HeldRowFields):
    status: Literal["active", "scheduled", "expired"]


class PurchaseRowOut(PurchaseOut, HeldRowFields):
    id: str


SubscriptionRows = list[SubscriptionRowOut]
PurchaseRows = list[PurchaseRowOut]


class SubscriptionListOut(Schema):
    list: SubscriptionRows
    has_more: bool
    next_cursor: str | None


class PurchaseListOut(Schema):
    list: PurchaseRows
    has_more: bool
    next_cursor: str | None
