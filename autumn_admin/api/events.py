"""Usage events, newest first."""

from __future__ import annotations

from django.db.models import Q
from ninja import Router

from autumn_admin.api.lookups import of_customers, page_of
from autumn_admin.api.schemas.common import ERRORS
from autumn_admin.api.schemas.events import EventListOut, ListEventsParams
from autumn_admin.api.serializers.events import event_json
from autumn_admin.api.units import from_ms
from billing.models import Event

router = Router(tags=["events"])


@router.post(
    "/events.list",
    response={200: EventListOut, **ERRORS},
    operation_id="listEvents",
    summary="List usage events",
)
def events_list(request, params: ListEventsParams):
    """Events of one customer (customer_id) or of every customer of the environment, newest first,
    optionally of some features and within custom_range (epoch ms, start inclusive, end exclusive)."""
    events = of_customers(request, Event.objects.all(), params.customer_id)
    if params.feature_id is not None:
        wanted = [params.feature_id] if isinstance(params.feature_id, str) else params.feature_id
        events = events.filter(Q(feature__feature_id__in=wanted) | Q(feature__isnull=True, event_name__in=wanted))
    if params.custom_range is not None:
        if params.custom_range.start is not None:
            events = events.filter(timestamp__gte=from_ms(params.custom_range.start))
        if params.custom_range.end is not None:
            events = events.filter(timestamp__lt=from_ms(params.custom_range.end))
    page = page_of(
        events.select_related("customer", "feature"),
        time_field="timestamp",
        cursor=params.start_cursor,
        limit=params.limit,
    )
    return {"list": [event_json(e, e.customer.customer_id) for e in page.items], "next_cursor": page.next_cursor}
