"""Usage events: the list, newest first, and usage aggregated over time (the SDKs' usage charts)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q
from django.utils import timezone
from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, customers_of, of_customers, page_of
from autumn_admin.api.schemas.common import ERRORS
from autumn_admin.api.schemas.events import AggregateEventsOut, AggregateEventsParams, EventListOut, ListEventsParams
from autumn_admin.api.serializers.events import aggregate_json, event_json
from autumn_admin.api.units import from_ms
from billing.models import Event, Feature
from billing.usage_aggregate import usage_aggregate, window_for_custom, window_for_range

router = Router(tags=["events"])


def filtered_events(request, params: ListEventsParams):
    """The events a list asks for: of the key's environment, of one customer, features and time range."""
    events = of_customers(request, Event.objects.all(), params.customer_id)
    if params.feature_id is not None:
        wanted = [params.feature_id] if isinstance(params.feature_id, str) else params.feature_id
        events = events.filter(Q(feature__feature_id__in=wanted) | Q(feature__isnull=True, event_name__in=wanted))
    if params.custom_range is not None:
        if params.custom_range.start is not None:
            events = events.filter(timestamp__gte=from_ms(params.custom_range.start))
        if params.custom_range.end is not None:
            events = events.filter(timestamp__lt=from_ms(params.custom_range.end))
    return events


@router.post(
    "/events.list",
    response={200: EventListOut, **ERRORS},
    operation_id="listEvents",
    summary="List usage events",
)
def events_list(request, params: ListEventsParams):
    """Events of one customer (customer_id) or of every customer of the environment, newest first,
    optionally of some features and within custom_range (epoch ms, start inclusive, end exclusive)."""
    page = page_of(
        filtered_events(request, params).select_related("customer", "feature"),
        time_field="timestamp",
        cursor=params.start_cursor,
        limit=params.limit,
    )
    return {"list": [event_json(e, e.customer.customer_id) for e in page.items], "next_cursor": page.next_cursor}


def _zone(name: str | None):
    if name is None:
        return timezone.get_default_timezone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(422, f"timezone: {name[:64]!r} is not an IANA time zone (like Europe/Paris).", "invalid_inputs")


def _features(feature_ids: list[str]) -> list[Feature]:
    """The features named, in the order named (each once); a 404 naming any that don't exist."""
    wanted = list(dict.fromkeys(feature_ids))
    found = {f.feature_id: f for f in Feature.objects.filter(feature_id__in=wanted)}
    missing = [f for f in wanted if f not in found]
    if missing:
        raise ApiError(404, f"Feature {', '.join(missing)} not found", "feature_not_found")
    return [found[f] for f in wanted]


def _group_by(group_by: str | None) -> str | None:
    if group_by is None or group_by == "$customer_id":
        return group_by
    if group_by.startswith("properties.") and len(group_by) > len("properties."):
        return group_by.removeprefix("properties.")
    if group_by in ("$entity_id", "$plan_id"):
        raise ApiError(
            422,
            f"group_by: events here record no {group_by[1:]}; group by $customer_id or a property.",
            "invalid_inputs",
        )
    raise ApiError(422, 'group_by: name an event property as "properties.<name>", or "$customer_id".', "invalid_inputs")


@router.post(
    "/events.aggregate",
    response={200: AggregateEventsOut, **ERRORS},
    operation_id="aggregateEvents",
    exclude_unset=True,
    summary="Usage over time",
)
def events_aggregate(request, params: AggregateEventsParams):
    """Usage of one or more features over `range` (or `custom_range`), a value per bin (a day, or an hour
    for 24h), optionally per group of `group_by`, and each feature's total count and sum. Of one customer,
    or of every customer of the environment. Bins of whole days are read from the daily rollup."""
    if (params.range is None) == (params.custom_range is None):
        raise ApiError(422, "Give range or custom_range (one of them).", "invalid_inputs")
    customer = customer_or_404(request, params.customer_id) if params.customer_id is not None else None
    features = _features([params.feature_id] if isinstance(params.feature_id, str) else params.feature_id)
    group_by = _group_by(params.group_by)
    tz = _zone(params.timezone)
    if params.range is not None:
        window = window_for_range(params.range, bin_size=params.bin_size, tz=tz, now=timezone.now(), customer=customer)
    else:
        window = window_for_custom(
            from_ms(params.custom_range.start), from_ms(params.custom_range.end), bin_size=params.bin_size, tz=tz
        )
    aggregate = usage_aggregate(
        customers=customer if customer is not None else customers_of(request),
        features=features,
        window=window,
        group_by=group_by,
        filter_by=params.filter_by,
        max_groups=params.max_groups or 9,
        measure=params.measure or "sum",
    )
    return aggregate_json(aggregate, features)
