"""Usage events: the filters of events.list and events.aggregate, and what each answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

from autumn_admin.api.schemas.common import (
    NO_ENTITIES,
    CustomerId,
    EpochMs,
    Number,
    Omittable,
    PageParams,
    Params,
    Slug,
    not_supported,
    whole_number,
)
from autumn_admin.api.units import MAX_EPOCH_MS


class TimeRange(Params):
    start: Omittable[EpochMs] = None
    end: Omittable[EpochMs] = None


class ListEventsParams(PageParams):
    customer_id: CustomerId | None = None
    entity_id: NO_ENTITIES = None
    feature_id: Slug | list[Slug] | None = None
    custom_range: TimeRange | None = None
    range: not_supported("events.list filters by custom_range (start, end)") = None


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


# --- events.aggregate ---------------------------------------------------------------------------

AGGREGATE_FEATURES_MAX = 20
FILTERS_MAX = 5


def _whole_ms(value: float) -> int:
    if value != int(value):
        raise ValueError("must be a whole number of milliseconds")
    return int(value)


# autumn-sdk sends these as floats (1767225600000.0): a whole number either way.
EpochMsNumber = Annotated[
    float, Field(ge=0, le=MAX_EPOCH_MS, description="Milliseconds since the Unix epoch."), AfterValidator(_whole_ms)
]
PropertyKey = Annotated[str, Field(min_length=1, max_length=255)]


class AggregateRange(Params):
    start: EpochMsNumber
    end: EpochMsNumber


class AggregateEventsParams(Params):
    feature_id: Slug | Annotated[list[Slug], Field(min_length=1, max_length=AGGREGATE_FEATURES_MAX)]
    customer_id: CustomerId | None = Field(None, description="Leave out for every customer of the environment.")
    entity_id: NO_ENTITIES = None
    range: Literal["24h", "7d", "30d", "90d", "last_cycle", "1bc", "3bc"] | None = Field(
        None, description="Up to now, widened to whole bins. last_cycle, 1bc and 3bc need customer_id."
    )
    custom_range: AggregateRange | None = Field(None, description="Instead of range: start inclusive, end exclusive.")
    bin_size: Omittable[Literal["hour", "day", "week", "month"]] = Field(
        None, description="Hour for range 24h, else day. Weeks start on Monday."
    )
    group_by: Annotated[str, Field(min_length=2, max_length=266)] | None = Field(
        None, description='"properties.<name>" (an event property), or "$customer_id".'
    )
    filter_by: (
        Annotated[dict[PropertyKey, Annotated[str, Field(max_length=1000)]], Field(max_length=FILTERS_MAX)] | None
    ) = Field(None, description="Only events whose properties have these values.")
    max_groups: Omittable[whole_number(1, 250)] = Field(
        None, description="With group_by: the groups with the most usage; the rest are added up as Other. Default 9."
    )
    measure: Omittable[Literal["sum", "count"]] = Field(None, description="Bin the events' sum (default) or count.")
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="The IANA zone days are counted in; the deployment's TIME_ZONE by default."
    )
    aggregate_on: not_supported("which balance each event drew from is not recorded") = None


class AggregatePeriodOut(Schema):
    period: Number
    values: dict[str, Number]
    grouped_values: dict[str, dict[str, Number]] = Field(None, description="Only with group_by.")


class AggregateTotalOut(Schema):
    count: Number
    sum: Number


AggregatePeriodOutList = list[AggregatePeriodOut]


class AggregateEventsOut(Schema):
    list: AggregatePeriodOutList
    total: dict[str, AggregateTotalOut]
