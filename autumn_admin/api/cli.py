"""The paths Autumn's CLI (`atmn`) calls besides the SDKs' operations: the organization the key belongs to
(`atmn env`), the offset-paged forms of the customer and event lists (`atmn customers`, `atmn events`) and
events.aggregate at the path `atmn events --mode aggregate` calls.
Like every operation, they see the key's environment only."""

from __future__ import annotations

from typing import Annotated

from django.conf import settings
from django.utils.text import slugify
from ninja import Router, Schema
from pydantic import Field

from autumn_admin.api.events import events_aggregate, filtered_events
from autumn_admin.api.lookups import customers_of
from autumn_admin.api.schemas.catalogue import OrganizationOut
from autumn_admin.api.schemas.common import ERRORS, Number, Params, whole_number
from autumn_admin.api.schemas.customers import CustomerOut
from autumn_admin.api.schemas.events import AggregateEventsOut, AggregateEventsParams, EventOut, ListEventsParams
from autumn_admin.api.serializers.events import event_json
from billing.catalogue.specs import DEFAULT_CURRENCY
from billing.services.current import customers_bring_current
from billing.shapes.customers import customer_json, load_customers
from billing.stripe_io.config import is_configured

router = Router(tags=["cli"])

Offset = whole_number(0, 10_000_000)
Limit = whole_number(1, 1000)


def _organization(request) -> dict:
    env = request.api_key.env
    name = settings.ORGANIZATION_NAME
    return {
        "id": slugify(name) or "org",
        "name": name,
        "slug": slugify(name) or "org",
        "env": env,
        "created_at": None,
        "default_currency": DEFAULT_CURRENCY,
        "stripe_connection": "connected" if is_configured(env) else "none",
    }


@router.get("/organization", response={200: OrganizationOut, **ERRORS}, summary="The organization")
def organization(request):
    """The organization the key belongs to (ORGANIZATION_NAME), and the key's environment."""
    return _organization(request)


@router.get("/organization/me", response={200: OrganizationOut, **ERRORS}, summary="The key's organization")
def organization_me(request):
    return _organization(request)


class OffsetCustomersParams(Params):
    limit: Limit = 50
    offset: Offset = 0
    search: Annotated[str, Field(max_length=255)] | None = None


CustomerOutList = list[CustomerOut]
EventOutList = list[EventOut]


class OffsetCustomersOut(Schema):
    list: CustomerOutList
    has_more: bool
    offset: Number
    limit: Number


@router.post(
    "/customers/list", response={200: OffsetCustomersOut, **ERRORS}, exclude_unset=True, include_in_schema=False
)
def customers_list_by_offset(request, params: OffsetCustomersParams):
    """customers.list by offset, newest first: what `atmn customers` pages through."""
    customers = customers_of(request)
    if params.search:
        customers = customers.search(params.search)
    rows = list(customers.order_by("-created_at", "-id")[params.offset : params.offset + params.limit + 1])
    page = rows[: params.limit]
    customers_bring_current(customers=page)
    return {
        "list": [customer_json(c) for c in load_customers(page)],
        "has_more": len(rows) > params.limit,
        "offset": params.offset,
        "limit": params.limit,
    }


class OffsetEventsParams(ListEventsParams):
    offset: Offset = 0
    limit: Limit = 100


class OffsetEventsOut(Schema):
    list: EventOutList
    has_more: bool
    total: Number
    offset: Number
    limit: Number


@router.post("/events/list", response={200: OffsetEventsOut, **ERRORS}, include_in_schema=False)
def events_list_by_offset(request, params: OffsetEventsParams):
    """events.list by offset, newest first, with the total matching: what `atmn events` pages through."""
    events = filtered_events(request, params)
    rows = list(
        events.select_related("customer", "feature").order_by("-timestamp", "-id")[
            params.offset : params.offset + params.limit + 1
        ]
    )
    page = rows[: params.limit]
    customers_bring_current(customers=page)
    return {
        "list": [event_json(e, e.customer.customer_id) for e in page],
        "has_more": len(rows) > params.limit,
        "total": events.count(),
        "offset": params.offset,
        "limit": params.limit,
    }


@router.post("/events/aggregate", response={200: AggregateEventsOut, **ERRORS}, include_in_schema=False)
def events_aggregate_by_path(request, params: AggregateEventsParams):
    """events.aggregate at the path `atmn events --mode aggregate` calls."""
    return events_aggregate(request, params)
