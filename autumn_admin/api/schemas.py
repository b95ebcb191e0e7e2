"""What the API reads and answers, as pydantic models: ninja validates with them and builds the
OpenAPI document from them, so the document describes exactly what is served.

Request models are strict (a string is not a number, 1 is not true) and ignore unknown keys, as
Autumn's API does. A number or boolean with a default may be left out, but an explicit null is refused
like any other wrong type (`Omittable`): null never silently means the default. Response models list
every key the official clients require, null where empty.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, WithJsonSchema

from billing.quantities import parse_quantity
from customers.errors import ServiceError
from customers.models import CUSTOMER_ID_MAX_LENGTH, CUSTOMER_ID_PATTERN
from customers.validation import REASON_MAX_LENGTH, TEXT_LIMITS, validate_customer_id, validate_metadata

# --- value types --------------------------------------------------------------------------------

MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds
JSON_OBJECT_MAX_CHARS = 65536

T = TypeVar("T")


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null: leave it out to use the default")
    return value


Omittable = Annotated[T, BeforeValidator(_not_null)]
"""A request field that may be left out (its default applies) but not sent as null. Give it the default
`= None` (pydantic does not validate defaults) and treat None as "not sent"."""

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
"""A JSON number in a response: integers stay integers."""


def _quantity(value: Any):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    try:
        return parse_quantity(value, field="value")
    except ServiceError as exc:
        # parse_quantity names the field "value"; the location already names the real one.
        raise ValueError(exc.message.removeprefix("value ")) from None


Quantity = Annotated[
    Any,
    BeforeValidator(_quantity),
    WithJsonSchema({"type": "number", "minimum": -1e15, "maximum": 1e15}),
]
"""A quantity in a request: finite, at most 10^15 in size and 6 decimals. Becomes a Decimal."""

EpochMs = Annotated[int, Field(ge=0, le=MAX_EPOCH_MS, description="Milliseconds since the Unix epoch.")]


def _customer_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return validate_customer_id(value)
    except ServiceError as exc:
        raise ValueError(exc.message) from None


CustomerId = Annotated[
    Any,
    BeforeValidator(_customer_id),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": CUSTOMER_ID_MAX_LENGTH, "pattern": CUSTOMER_ID_PATTERN}
    ),
]
Name = Annotated[str, Field(max_length=TEXT_LIMITS["name"])]
Email = Annotated[str, Field(max_length=TEXT_LIMITS["email"])]
Fingerprint = Annotated[str, Field(max_length=TEXT_LIMITS["fingerprint"])]
Slug = Annotated[str, Field(min_length=1, max_length=255)]
Cursor = Annotated[str, Field(max_length=512)]


def _json_object(value: dict) -> dict:
    if len(json.dumps(value, default=str)) > JSON_OBJECT_MAX_CHARS:
        raise ValueError(f"may be at most {JSON_OBJECT_MAX_CHARS:,} characters as JSON")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]


def _metadata(value: dict) -> dict:
    try:
        return validate_metadata(value)  # the dashboard's limits too
    except ServiceError as exc:
        raise ValueError(exc.message.removeprefix("metadata ")) from None


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata)]


class Params(Schema):
    model_config = ConfigDict(strict=True, extra="ignore")


# --- requests -----------------------------------------------------------------------------------

CustomerExpand = Literal["invoices", "rewards"]


class CustomerFields(Params):
    name: Name | None = Field(None, description="The customer's name; null clears it.")
    email: Email | None = Field(None, description="The customer's email address; null clears it.")
    fingerprint: Fingerprint | None = Field(None, description="A device or account fingerprint; null clears it.")
    metadata: Metadata | None = None
    send_email_receipts: Omittable[bool] = None


class GetOrCreateCustomerParams(CustomerFields):
    customer_id: CustomerId
    expand: list[CustomerExpand] | None = None


class GetCustomerParams(Params):
    customer_id: CustomerId
    expand: list[CustomerExpand] | None = None


class PlanFilter(Params):
    id: Slug
    versions: Omittable[list[Annotated[int, Field(ge=1, le=1_000_000)]]] = None


class ListCustomersParams(Params):
    start_cursor: Cursor = ""
    limit: Omittable[Annotated[int, Field(ge=1, le=1000)]] = 50
    search: Annotated[str, Field(max_length=255)] | None = None
    plans: list[PlanFilter] | None = None
    subscription_status: Literal["active", "scheduled"] | None = None
    sort_order: Literal["asc", "desc"] = "desc"


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


class CheckParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    required_balance: Omittable[Quantity] = None
    send_event: Omittable[bool] = False
    properties: JsonObject | None = None


class TrackParams(Params):
    customer_id: CustomerId
    feature_id: Slug | None = None
    event_name: Slug | None = None
    value: Omittable[Quantity] = None
    properties: JsonObject | None = None
    timestamp: Omittable[EpochMs] = None


ApiInterval = Literal["one_off", "day", "week", "month", "quarter", "semi_annual", "year"]


class UpdateBalanceParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    remaining: Omittable[Quantity] = Field(
        None, description="The new balance (the dashboard's rule: usage stays as recorded, granted moves)."
    )
    add_to_balance: Omittable[Quantity] = Field(None, description="Added to the balance; negative subtracts.")
    next_reset_at: Omittable[EpochMs] = None
    interval: ApiInterval | None = Field(None, description="Which balance, when the customer has several.")
    balance_id: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="Which balance (a breakdown id), when the customer has several."
    )
    reason: Annotated[str, Field(max_length=REASON_MAX_LENGTH)] | None = Field(
        None, description="Kept in the audit trail."
    )
    usage: Omittable[Quantity] = Field(
        None, description="Not accepted: recorded usage is never rewritten. Set `remaining` instead."
    )
    included_grant: Omittable[Quantity] = Field(
        None, description="Not accepted: set `remaining`; a lasting allowance belongs in a (custom) plan."
    )


class ResetParams(Params):
    interval: ApiInterval
    interval_count: Omittable[Annotated[int, Field(ge=1, le=1000)]] = 1


class CreateBalanceParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    included_grant: Omittable[Quantity] = None
    unlimited: Omittable[bool] = False
    reset: ResetParams | None = None


class TimeRange(Params):
    start: Omittable[EpochMs] = None
    end: Omittable[EpochMs] = None


class ListEventsParams(Params):
    start_cursor: Cursor = ""
    limit: Omittable[Annotated[int, Field(ge=1, le=1000)]] = 50
    customer_id: CustomerId | None = None
    feature_id: Slug | list[Slug] | None = None
    custom_range: TimeRange | None = None


InvoiceStatus = Literal["draft", "open", "void", "paid", "uncollectible"]


class ListInvoicesParams(Params):
    start_cursor: Cursor = ""
    limit: Omittable[Annotated[int, Field(ge=1, le=1000)]] = 50
    customer_id: CustomerId | None = None
    status: list[InvoiceStatus] | None = None


Url = Annotated[str, Field(min_length=1, max_length=2000)]


class AttachParams(Params):
    customer_id: CustomerId
    plan_id: Slug
    version: Omittable[Annotated[int, Field(ge=1, le=1_000_000)]] = None
    success_url: Url | None = None


class LegacyAttachParams(Params):
    customer_id: CustomerId
    product_id: Slug
    version: Omittable[Annotated[int, Field(ge=1, le=1_000_000)]] = None
    success_url: Url | None = None


class LegacyCreateCustomerParams(CustomerFields):
    id: CustomerId


class LegacyUpdateCustomerParams(CustomerFields):
    id: CustomerId | None = Field(None, description="A new id for the customer.")


# --- responses ----------------------------------------------------------------------------------


class ErrorOut(Schema):
    message: str
    code: str
    env: Literal["sandbox", "live"] | None


class SuccessOut(Schema):
    success: bool


class ResetOut(Schema):
    interval: ApiInterval
    interval_count: Number
    resets_at: Number | None


class BreakdownPriceOut(Schema):
    amount: Number
    billing_units: Number
    billing_method: Literal["prepaid", "usage_based"]
    max_purchase: Number | None


class BreakdownOut(Schema):
    id: str
    plan_id: str | None
    included_grant: Number
    prepaid_grant: Number
    remaining: Number
    usage: Number
    unlimited: bool
    reset: ResetOut | None
    price: BreakdownPriceOut | None
    expires_at: Number | None


class BalanceOut(Schema):
    feature_id: str
    granted: Number
    remaining: Annotated[int | float, WithJsonSchema({"type": "number", "minimum": 0})]
    usage: Number
    unlimited: bool
    overage_allowed: bool
    max_purchase: Number | None
    next_reset_at: Number | None
    breakdown: list[BreakdownOut]


class FlagOut(Schema):
    id: str
    plan_id: str | None
    expires_at: Number | None
    feature_id: str


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


class InvoiceOut(Schema):
    id: str
    customer_id: str | None
    entity_id: str | None
    plan_ids: list[str]
    stripe_id: str
    processor_type: Literal["stripe"]
    status: str
    total: Number
    amount_paid: Number | None
    refunded_amount: Number
    currency: str
    created_at: Number
    hosted_invoice_url: str | None


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


# Aliases: a field named `list` would shadow the builtin inside its class body.
CustomerOutList = list[CustomerOut]
LegacyCustomerOutList = list[LegacyCustomerOut]


class CustomerListOut(Schema):
    list: CustomerOutList
    next_cursor: str | None


class LegacyCustomerListOut(Schema):
    list: LegacyCustomerOutList
    total: int
    limit: int
    offset: int


class CheckOut(Schema):
    allowed: bool
    customer_id: str
    entity_id: str | None
    required_balance: Number
    balance: BalanceOut | None
    flag: FlagOut | None


class TrackOut(Schema):
    customer_id: str
    event_name: str = Field(None, description="The event name usage was tracked by; absent when tracked by feature_id.")
    value: Number
    balance: BalanceOut | None


class EventOut(Schema):
    id: str
    timestamp: Number
    feature_id: str
    customer_id: str
    value: Number
    properties: dict[str, Any]
    deductions: list[dict[str, Any]] | None


EventOutList = list[EventOut]
InvoiceOutList = list[InvoiceOut]


class EventListOut(Schema):
    list: EventOutList
    next_cursor: str | None


class InvoiceListOut(Schema):
    list: InvoiceOutList
    next_cursor: str | None


class AttachOut(Schema):
    customer_id: str
    payment_url: str | None
    checkout_url: str | None = Field(description="The same as payment_url, under the name older clients read.")
    invoice: dict[str, Any] | None
    required_action: dict[str, Any] | None


class LegacyAttachOut(Schema):
    success: bool
    customer_id: str
    product_ids: list[str]
    code: Literal["new_product_attached", "checkout_created"]
    message: str
    checkout_url: str | None
