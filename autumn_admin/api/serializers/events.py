"""A usage event in Autumn's shape."""

from __future__ import annotations

from autumn_admin.api.units import ms
from billing.models import Event
from billing.quantities import to_number


def event_json(event: Event, customer_id: str) -> dict:
    return {
        "id": f"evt_{event.pk}",
        "timestamp": ms(event.timestamp),
        "feature_id": event.feature.feature_id if event.feature_id else event.event_name,
        "customer_id": customer_id,
        "value": to_number(event.value),
        "properties": event.properties or {},
        "deductions": None,
    }
