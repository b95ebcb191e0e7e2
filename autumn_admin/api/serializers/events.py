"""A usage event in Autumn's shape, and usage aggregated over time."""

from __future__ import annotations

from billing.models import Event, Feature
from billing.quantities import to_number
from billing.shapes.units import ms
from billing.usage_aggregate import Aggregate


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


def aggregate_json(aggregate: Aggregate, features: list[Feature]) -> dict:
    """Per period, each feature's value (and, with group_by, its value per group); the range's totals."""
    periods = []
    for i, period in enumerate(aggregate.periods):
        item = {"period": ms(period), "values": {f.feature_id: to_number(aggregate.values[f.pk][i]) for f in features}}
        if aggregate.grouped is not None:
            item["grouped_values"] = {
                f.feature_id: {group: to_number(v) for group, v in aggregate.grouped[f.pk][i].items()} for f in features
            }
        periods.append(item)
    return {
        "list": periods,
        "total": {
            f.feature_id: {"count": aggregate.totals[f.pk][0], "sum": to_number(aggregate.totals[f.pk][1])}
            for f in features
        },
    }
