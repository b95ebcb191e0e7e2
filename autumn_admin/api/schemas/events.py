"""Usage events: the filters of events.list and the event as it answers it."""

from __future__ import annotations

from typing import Any

from ninja import Schema

from autumn_admin.api.schemas.common import CustomerId, EpochMs, Number, Omittable, PageParams, Params, Slug


class TimeRange(Params):
    start: Omittable[EpochMs] = None
    end: Omittable[EpochMs] = None


class ListEventsParams(PageParams):
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
