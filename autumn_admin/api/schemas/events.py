"""Usage events: the filters of events.list and the event as it answers it."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import Cursor, CustomerId, EpochMs, Number, Omittable, Params, Slug


class TimeRange(Params):
    start: Omittable[EpochMs] = None
    end: Omittable[EpochMs] = None


class ListEventsParams(Params):
    start_cursor: Cursor = ""
    limit: Omittable[Annotated[int, Field(ge=1, le=1000)]] = 50
    customer_id: CustomerId | None = None
    feature_id: Slug | list[Slug] | None = None
    custom_range: TimeRange | None = None


class EventOut(Schema):
    id: str
    timestamp: Number
    feature_id: str
    customer_id: str
    value: Number
    properties: dict[str, Any]
    deductions: list[dict[str, Any]] | None


# An alias: a field named `list` would shadow the builtin inside its class body.
EventOutList = list[EventOut]


class EventListOut(Schema):
    list: EventOutList
    next_cursor: str | None
