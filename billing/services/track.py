"""Recording usage (track): validated here, decided and written by the engine (billing/engine/), which
draws the balances down and writes the events in one transaction."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.engine import run as engine
from billing.engine.decide import reset_due
from billing.engine.run import TrackResult
from billing.models import Balance, Entity, Feature, FeatureType
from billing.quantities import parse_quantity
from customers.audit import Actor
from customers.errors import ServiceError
from customers.models import Customer


def feature_for_track(*, feature_id: str | None = None, event_name: str | None = None) -> Feature:
    """The feature a track call refers to, by id or by one of its event names (the first, when several
    listen to it: `features_for_event` gives them all)."""
    if feature_id:
        # Archived features too: archiving hides a feature from new plans, never the balances customers hold.
        feature = Feature.objects.filter(feature_id=feature_id).first()
        if feature is None:
            raise ServiceError(f"Feature {feature_id!r} not found.", code="feature_not_found", status=404)
        return feature
    if event_name:
        return features_for_event(event_name)[0]
    raise ServiceError("Give a feature_id or an event_name.", code="invalid_input", field="feature_id")


def features_for_event(event_name: str) -> list[Feature]:
    """Every metered feature (or credit system) that counts an event name, in the order of their ids; a
    feature whose id is the event name when none lists it. A 404 when there is none."""
    # The catalogue is small: matched in Python.
    features = [f for f in Feature.objects.order_by("feature_id") if f.is_metered]  # archived ones too
    listening = [f for f in features if event_name in (f.event_names or [])]
    listening = listening or [f for f in features if f.feature_id == event_name]
    if not listening:
        raise ServiceError(f"No feature is tracked by the event {event_name!r}.", code="feature_not_found", status=404)
    return listening


def balance_track(
    *,
    customer: Customer,
    feature: Feature | None = None,
    features: list[Feature] | None = None,
    value,
    actor: Actor,
    event_name: str = "",
    properties: dict | None = None,
    timestamp: datetime | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    reject_uncovered: bool = False,
    entity: Entity | None = None,
) -> TrackResult:
    """Record usage of `feature` (or of each of `features`, as a track by event name does): deduct it from
    the customer's balances — the feature's own first, then the credit systems that list it, at their
    cost — and write the events, atomically (the engine: billing/engine/). `reject_uncovered`: a use the
    balances don't cover is refused (409 `insufficient_balance`) and nothing is tracked. `entity`: the
    customer's entity the use is of: its own balances and the customer-level ones are drawn."""
    features = features or [feature]
    for f in features:
        if f.type == FeatureType.BOOLEAN:
            raise ServiceError(
                f"{f.feature_id} is an on/off feature: there is no usage to track.", code="invalid_inputs"
            )
    return engine.track(
        customer=customer,
        features=features,
        value=parse_quantity(value, field="value"),
        actor=actor,
        now=now or timezone.now(),
        event_name=event_name,
        properties=properties,
        timestamp=timestamp,
        idempotency_key=idempotency_key,
        reject_uncovered=reject_uncovered,
        entity=entity,
    )


@transaction.atomic
def balance_batch_track(*, tracks: list[dict], actor: Actor, now: datetime | None = None) -> list[TrackResult]:
    """Many tracks (balances.batch_track) in one transaction, each by `balance_track`'s rule: each of
    `tracks` holds balance_track's arguments (customer, features, value, event_name, properties,
    timestamp, idempotency_key). All are recorded, or none."""
    now = now or timezone.now()
    # Drawn in the order of their customer and features, whatever order they came in: two batches over the
    # same balances then lock them in one order and never deadlock. The results keep the request's order.
    order = sorted(
        range(len(tracks)),
        key=lambda i: (tracks[i]["customer"].pk, [f.pk for f in tracks[i].get("features") or [tracks[i]["feature"]]]),
    )
    results: list[TrackResult | None] = [None] * len(tracks)
    for i in order:
        results[i] = balance_track(**tracks[i], actor=actor, now=now)
    return results


@transaction.atomic
def balance_usage_set(
    *, customer: Customer, feature: Feature, balance: Balance, usage, actor: Actor, now: datetime | None = None
) -> TrackResult | None:
    """Make `balance`'s usage read `usage` (the 1.2 `/usage`: "this customer now uses 5 seats").

    The difference from the usage now is tracked as an event, negative when usage goes down, so the
    balance, the events and the graphs agree; nothing recorded is rewritten. The balance is locked
    first, so a concurrent track can't slip between the read and the write. Returns None when the
    usage already reads `usage`.
    """
    usage = parse_quantity(usage, field="value")
    if usage < 0:
        raise ServiceError("Usage can't be negative.", code="invalid_inputs", field="value")
    now = now or timezone.now()
    locked = Balance.objects.select_for_update().get(pk=balance.pk)
    reset_due(locked, now)  # as the track below finds it (it writes the reset)
    if not locked.unlimited and usage > locked.granted and not locked.overage_allowed:
        raise ServiceError(
            f"Usage {usage} is more than the {locked.granted} granted, and this balance allows no overage.",
            code="overage_not_allowed",
            field="value",
        )
    delta = usage - locked.usage
    if delta == 0:
        return None
    return balance_track(
        customer=customer, feature=feature, value=delta, actor=actor, properties={"set_usage": str(usage)}, now=now
    )
