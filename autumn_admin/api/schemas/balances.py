"""Balances: what check, track, update and create read, and the balance (or flag) they answer with."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from autumn_admin.api.schemas.common import (
    NO_AUTO_CREATE,
    NO_ENTITIES,
    Cursor,
    CustomerId,
    EntityId,
    EpochMs,
    Number,
    Omittable,
    Params,
    Slug,
    not_supported,
    whole_number,
)
from billing.quantities import parse_quantity
from customers.errors import ServiceError
from customers.validation import REASON_MAX_LENGTH

JSON_OBJECT_MAX_CHARS = 65536


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


def quantity_or_one(quantity: Decimal | None) -> Decimal:
    """A quantity left out (check's required_balance, track's value) counts as 1."""
    return quantity if quantity is not None else Decimal(1)


def _json_object(value: dict) -> dict:
    if len(json.dumps(value, default=str)) > JSON_OBJECT_MAX_CHARS:
        raise ValueError(f"may be at most {JSON_OBJECT_MAX_CHARS:,} characters as JSON")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]

ApiInterval = Literal["one_off", "day", "week", "month", "quarter", "semi_annual", "year"]

# --- requests -----------------------------------------------------------------------------------


class CheckParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    entity_id: EntityId | None = Field(
        None, description="The customer's entity: its own balances and the customer-level ones answer."
    )
    required_balance: Omittable[Quantity] = None
    send_event: Omittable[bool] = False
    properties: JsonObject | None = None
    customer_data: NO_AUTO_CREATE = None
    lock: not_supported("locks (a balance held for a later track) are not built; leave lock out") = None
    with_preview: not_supported("a check answers without a paywall preview", harmless=(False,)) = None


class TrackParams(Params):
    customer_id: CustomerId
    feature_id: Slug | None = None
    entity_id: EntityId | None = Field(
        None, description="The customer's entity: its own balances are drawn, and the customer-level ones."
    )
    customer_data: NO_AUTO_CREATE = None
    event_name: Slug | None = None
    value: Omittable[Quantity] = None
    properties: JsonObject | None = None
    timestamp: Omittable[EpochMs] = None
    overage_behavior: not_supported(
        'only "cap" is built (a track past a balance without overage stops it at 0); send "cap" or nothing',
        harmless=("cap",),
    ) = None
    async_: Omittable[bool] = Field(
        None, alias="async", description="Accepted either way: the track is recorded before the answer."
    )


class BatchTrackItem(TrackParams):
    """One track of balances.batch_track: balances.track's fields, and an idempotency key of its own."""

    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None, description="A track repeated with the same key is recorded once."
    )


BATCH_TRACK_MAX = 1000  # Autumn's: "up to 1000 usage events"


class UpdateBalanceParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    entity_id: NO_ENTITIES = None
    remaining: Omittable[Quantity] = Field(
        None, description="The new balance (the dashboard's rule: usage stays as recorded, granted moves)."
    )
    add_to_balance: Omittable[Quantity] = Field(None, description="Added to the balance; negative subtracts.")
    next_reset_at: Omittable[EpochMs] = None
    expires_at: not_supported("a grant's expiry is set when it is made (balances.create)") = None
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
    interval_count: Omittable[whole_number(1, 1000)] = 1


BalanceIdParam = Annotated[str, Field(min_length=1, max_length=64)]


class CreateBalanceParams(Params):
    customer_id: CustomerId
    feature_id: Slug
    entity_id: NO_ENTITIES = None
    included_grant: Omittable[Quantity] = None
    unlimited: Omittable[bool] = False
    reset: ResetParams | None = None
    next_reset_at: Omittable[EpochMs] = Field(None, description="The first reset of a resetting grant (future).")
    expires_at: Omittable[EpochMs] = Field(
        None, description="When the grant ends: from then on it is gone from balances and checks (future)."
    )
    balance_id: BalanceIdParam | None = Field(None, description="Your id for the grant, unique for the customer.")
    rollover: not_supported("rollovers are not built; send the grant without one") = None


class DeleteBalanceParams(Params):
    customer_id: CustomerId
    entity_id: NO_ENTITIES = None
    feature_id: Slug | None = None
    balance_id: BalanceIdParam | None = None
    interval: ApiInterval | None = Field(None, description="Which balance, when the customer has several.")
    recalculate_balances: not_supported("the other balances stay as they are", harmless=(False,)) = None


BalanceStatus = Literal["active", "expired"]


class ListBalancesParams(Params):
    customer_id: CustomerId | None = None
    entity_id: NO_ENTITIES = None
    feature_id: Slug | None = None
    plan_id: Slug | None = Field(
        None, description="Only this plan's balances; null: only grants outside any plan; absent: all."
    )
    statuses: list[BalanceStatus] | None = None
    start_cursor: Cursor = ""
    limit: Omittable[whole_number(1, 200)] = 50


# --- responses ----------------------------------------------------------------------------------


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


class CheckOut(Schema):
    allowed: bool
    customer_id: str
    entity_id: str | None
    required_balance: Number = Field(
        description="What was checked, in the units of `balance`: in credits when a credit system answered."
    )
    balance: BalanceOut | None = Field(
        description="The balance that answered: the feature's own, or a credit system's that lists it."
    )
    flag: FlagOut | None
    balances: dict[str, BalanceOut | None] = Field(
        description="The feature's balance and those of the credit systems it draws from, by feature id."
    )


class TrackOut(Schema):
    customer_id: str
    entity_id: str = Field(None, description="The entity tracked for; absent when the track named none.")
    event_name: str = Field(None, description="The event name usage was tracked by; absent when tracked by feature_id.")
    value: Number
    balance: BalanceOut | None = Field(
        description="The tracked feature's balance after the track; null when an event name reached several."
    )
    balances: dict[str, BalanceOut | None] = Field(
        None,
        description="Every balance the track reached, by feature id (the features an event name counts towards, "
        "the credit systems drawn from); absent when it reached the tracked feature alone.",
    )


class BalanceRowOut(BreakdownOut):
    """A balance as balances.list lists it: its breakdown, whose it is, and whether it is still active."""

    feature_id: str
    status: BalanceStatus
    rollovers: list[dict[str, Any]]
    customer_id: str
    entity_id: str | None
    source: Literal["customer", "entity"]
    created_at: Number


# An alias: a field named `list` would shadow the builtin inside its class body.
BalanceRowOutList = list[BalanceRowOut]


class BalanceListOut(Schema):
    list: BalanceRowOutList
    has_more: bool
    next_cursor: str | None
