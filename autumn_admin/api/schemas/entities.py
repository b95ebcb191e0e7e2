"""Entities: what entities.create/get/list/update/delete read, and the entity they answer with."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.balances import BalanceOut, FlagOut
from autumn_admin.api.schemas.common import (
    NO_AUTO_CREATE,
    CustomerId,
    EntityId,
    PageParams,
    Params,
    Slug,
    not_supported,
)
from autumn_admin.api.schemas.customers import EntityBaseOut, PlanFilter, PurchaseOut, SubscriptionOut
from billing.services.entities import NAME_MAX_LENGTH

NO_BILLING_CONTROLS = not_supported(
    "per-entity billing controls (spend limits, usage limits, alerts, overage) are not built",
    harmless=({},),
)

# --- requests -----------------------------------------------------------------------------------


class CreateEntityParams(Params):
    customer_id: CustomerId
    entity_id: EntityId
    feature_id: Slug
    name: Annotated[str, Field(max_length=NAME_MAX_LENGTH)] | None = None
    billing_controls: NO_BILLING_CONTROLS = None
    customer_data: NO_AUTO_CREATE = None


class EntityRef(Params):
    """entities.get/update/delete: the entity, of `customer_id` or of whichever customer of the key's environment
    has an entity of this id (more than one: a 400 asking for customer_id)."""

    entity_id: EntityId
    customer_id: CustomerId | None = None


class UpdateEntityParams(EntityRef):
    billing_controls: NO_BILLING_CONTROLS = None


class ListEntitiesParams(PageParams):
    customer_id: CustomerId | None = None
    search: Annotated[str, Field(max_length=255)] | None = None
    plans: list[PlanFilter] | None = None
    subscription_status: Literal["active", "scheduled"] | None = None
    processors: not_supported("every customer here bills through Stripe, if at all", harmless=([],)) = None


# --- responses ----------------------------------------------------------------------------------


class EntityOut(EntityBaseOut):
    subscriptions: list[SubscriptionOut]
    purchases: list[PurchaseOut]
    balances: dict[str, BalanceOut]
    flags: dict[str, FlagOut]
    billing_controls: dict[str, Any]


EntityOutList = list[EntityOut]


class EntityListOut(Schema):
    list: EntityOutList
    next_cursor: str | None
