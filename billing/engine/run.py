"""The engine's one path for every change of a balance by usage and every check: load → decide → store →
after. `track`, `check` and `check_and_track` are the only ways in (billing/services/track.py and
billing/services/balances.py call them with validated arguments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from billing.engine.after import after
from billing.engine.decide import (
    CheckResult,
    Decision,
    Deduction,
    FeatureBalance,
    decide_check,
    decide_check_and_track,
    decide_resets,
    decide_track,
    grouped,
)
from billing.engine.load import Keyed, load, load_by_key, load_due
from billing.engine.store import Recording, store, write
from billing.models import Balance, Entity, Event, EventIdempotencyKey, Feature, FeatureType
from customers.audit import Actor
from customers.errors import ServiceError
from customers.models import ApiKey, Customer


@dataclass
class TrackResult:
    event: Event
    balances: list[Balance] = field(default_factory=list)
    replayed: bool = False
    # Every feature the track reached (the tracked ones, then the credit systems it fell through to once
    # their own balances were used) with the customer's balances of it after the track, and what it took
    # from each balance.
    reached: dict[Feature, list[Balance]] = field(default_factory=dict)
    deductions: list[Deduction] = field(default_factory=list)


def _recording(actor: Actor, *, event_name, properties, timestamp, idempotency_key, now) -> Recording:
    return Recording(
        event_name=event_name or "",
        properties=properties or {},
        timestamp=timestamp or now,
        api_key=actor if isinstance(actor, ApiKey) else None,
        idempotency_key=idempotency_key or None,
        now=now,
    )


def _apply(customer: Customer, decision: Decision, *, actor: Actor, now: datetime, recording=None) -> list[Event]:
    events = store(customer, decision, now=now, recording=recording)
    after(customer=customer, decision=decision, actor=actor)
    return events


def track(
    *,
    customer: Customer,
    features: list[Feature],
    value: Decimal,
    actor: Actor,
    now: datetime,
    event_name: str = "",
    properties: dict | None = None,
    timestamp: datetime | None = None,
    idempotency_key: str | None = None,
    reject_uncovered: bool = False,
    entity: Entity | None = None,
) -> TrackResult:
    """Track `value` of each of `features` (validated by the caller) in one transaction. With
    `reject_uncovered` (Autumn's overage_behavior "reject"), a use that a feature's balances don't cover is
    refused (409) and nothing is tracked: decided under the same locks as the track, so two such tracks can
    never both pass and overdraw. `entity`: the customer's entity the use is of (its own balances are drawn, and
    the customer-level ones); without one, every balance of the customer."""
    recording = _recording(
        actor,
        event_name=event_name,
        properties=properties,
        timestamp=timestamp,
        idempotency_key=idempotency_key,
        now=now,
    )
    if idempotency_key:
        existing = EventIdempotencyKey.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if existing is not None:
            return replayed(customer, features, existing.event(), now=now, entity=entity)
    try:
        with transaction.atomic():
            rows = load(customer, features, lock=True, now=now, entity=entity)
            decision = decide_resets(rows, now)
            if reject_uncovered:
                _refuse_uncovered(customer, rows, features, value, now)
            decision = decide_track(rows, value, now, decision)
            events = _apply(customer, decision, actor=actor, now=now, recording=recording)
    except IntegrityError:
        if not idempotency_key:
            raise
        # A concurrent track with the same key committed first: answer as it did.
        key = EventIdempotencyKey.objects.get(customer=customer, idempotency_key=idempotency_key)
        return replayed(customer, features, key.event(), now=now, entity=entity)
    return TrackResult(
        event=events[0], balances=decision.balances, reached=decision.reached, deductions=decision.deductions
    )


def _refuse_uncovered(customer: Customer, rows, features: list[Feature], value: Decimal, now: datetime) -> None:
    for feature in features:
        if feature.type != FeatureType.BOOLEAN and not decide_check(rows, feature, value, now).allowed:
            raise ServiceError(
                f"{customer.customer_id}'s balance of {feature.feature_id} doesn't cover {value.normalize():f}: "
                "nothing was tracked.",
                code="insufficient_balance",
                status=409,
            )


def replayed(
    customer: Customer, features: list[Feature], event: Event, *, now: datetime, entity: Entity | None = None
) -> TrackResult:
    """The answer to a track repeated with the Idempotency-Key of `event`: that event, and the balances now."""
    rows = load(customer, features, lock=False, now=now, entity=entity)
    by_feature = grouped(rows, now)
    return TrackResult(event=event, balances=by_feature[features[0]], replayed=True, reached=by_feature)


def check(
    *,
    customer: Customer,
    feature: Feature,
    required: Decimal,
    now: datetime,
    actor: Actor = None,
    entity: Entity | None = None,
) -> CheckResult:
    """May the customer (its `entity`, when given) use `required` of `feature` now? A read, unless a balance
    of the customer is due for a reset: then the customer is brought current first (`bring_current`), and
    the rows read again."""
    rows = load(customer, [feature], lock=False, now=now, entity=entity)
    if rows.customer_due:
        bring_current(customer, now=now, actor=actor)
        rows = load(customer, [feature], lock=False, now=now, entity=entity)
    return decide_check(rows, feature, required, now)


def bring_current(customer: Customer, *, now: datetime, actor: Actor = None) -> int:
    """Reset every balance of `customer` that is due (locked, decided, stored, audited). Returns how many."""
    with transaction.atomic():
        decision = decide_resets(load_due(customer, now), now)
        _apply(customer, decision, actor=actor, now=now)
    return len(decision.resets)


@dataclass
class CheckAndTrack:
    """A check that also tracked (send_event): its answer, then the track (None when not allowed)."""

    check: CheckResult
    track: TrackResult | None
    balances: dict[Feature, list[Balance]]

    def answered(self, feature: Feature) -> FeatureBalance | None:
        """The balance that answered, as it stands after the track."""
        answered = self.check.answered_by or feature
        group = self.balances.get(answered)
        return FeatureBalance.of(answered, group) if group else self.check.balance


def check_and_track(
    *,
    customer: Customer,
    feature: Feature,
    required: Decimal,
    actor: Actor,
    now: datetime,
    properties: dict | None = None,
    entity: Entity | None = None,
) -> CheckAndTrack:
    """A check with send_event, in one transaction: allowed, it also tracks `required` (never for a flag)."""
    recording = _recording(actor, event_name="", properties=properties, timestamp=None, idempotency_key=None, now=now)
    with transaction.atomic():
        rows = load(customer, [feature], lock=True, now=now, entity=entity)
        decision = decide_check_and_track(rows, feature, required, now)
        events = _apply(customer, decision, actor=actor, now=now, recording=recording)
    tracked = None
    if events:
        tracked = TrackResult(
            event=events[0], balances=decision.balances, reached=decision.reached, deductions=decision.deductions
        )
    return CheckAndTrack(check=decision.check, track=tracked, balances=grouped(rows, now))


# --- by key: the hot calls, each in one load statement that also finds the key, customer and feature ---


@dataclass
class KeyedAnswer:
    """A check or track made by key: what the load found, the check's answer or the track's result."""

    keyed: Keyed
    check: CheckResult | None = None
    track: TrackResult | None = None


def check_by_key(
    *,
    key_hash: str,
    env: str,
    customer_id: str,
    feature_id: str,
    required: Decimal,
    now: datetime,
    entity_id: str | None = None,
):
    """`check` for a caller holding a secret key; None when the key, customer, feature or the entity named
    is not found (the caller then answers the error the usual way)."""
    args = {"key_hash": key_hash, "env": env, "customer_id": customer_id, "feature_id": feature_id}
    keyed = _found(load_by_key(**args, entity_id=entity_id, lock=False, now=now), entity_id)
    if keyed is None:
        return None
    if keyed.rows.customer_due:
        bring_current(keyed.customer, now=now)
        keyed = _found(load_by_key(**args, entity_id=entity_id, lock=False, now=now), entity_id)
        if keyed is None:  # deleted, or the key revoked, in between: the caller answers as for any such
            return None
    return KeyedAnswer(keyed=keyed, check=decide_check(keyed.rows, keyed.feature, required, now))


def _found(keyed: Keyed | None, entity_id: str | None) -> Keyed | None:
    """What the load found, None when it found no key, customer or feature, or not the entity named."""
    if keyed is None or (entity_id is not None and keyed.entity_pk is None):
        return None
    return keyed


def track_by_key(
    *,
    key_hash: str,
    env: str,
    customer_id: str,
    feature_id: str,
    value: Decimal,
    properties: dict | None,
    now: datetime,
    entity_id: str | None = None,
) -> KeyedAnswer | None:
    """`track` (without an idempotency key) for a caller holding a secret key, in one transaction: one
    load statement, decide, one store statement. None, having written nothing, when the key, customer or
    feature is not found or the feature is a flag (the caller then answers the error the usual way).

    Outside any transaction (a request on the lean path) the transaction is the connection's own, in two
    round trips: BEGIN with the load, then the store with after's writes and the COMMIT (psycopg pipelines),
    instead of four (BEGIN, load, store, COMMIT). Inside a caller's transaction (a batch, a test), or behind
    a pooler in transaction mode, it is a savepoint of it (`transaction.atomic`), as every other track."""
    args = {"key_hash": key_hash, "env": env, "customer_id": customer_id, "feature_id": feature_id}
    args["entity_id"] = entity_id
    if connection.in_atomic_block or settings.BEHIND_TRANSACTION_POOLER:
        with transaction.atomic():
            return _track_by_key(args, value, properties, now, own=False)
    try:
        return _track_by_key(args, value, properties, now, own=True)
    except BaseException:
        _rollback()
        raise


def _rollback() -> None:
    """End the connection's own transaction after a failure (nothing of it is kept)."""
    raw = connection.connection
    if raw is not None and not raw.closed:
        with connection.wrap_database_errors:
            raw.rollback()


def _track_by_key(args: dict, value: Decimal, properties: dict | None, now: datetime, *, own: bool):
    keyed = _found(load_by_key(**args, lock=True, now=now, begin=own), args["entity_id"])
    if keyed is None or keyed.feature.type == FeatureType.BOOLEAN:
        if own:  # keeps the key's last use noted by the load (as the savepoint's release does)
            with connection.wrap_database_errors:
                connection.connection.commit()
        return None
    decision = decide_track(keyed.rows, value, now)
    api_key = ApiKey(pk=keyed.api_key_id, env=args["env"])
    recording = _recording(api_key, event_name="", properties=properties, timestamp=None, idempotency_key=None, now=now)
    if own:
        raw = connection.connection
        with connection.wrap_database_errors, raw.pipeline():
            written = write(keyed.customer, decision, now=now, recording=recording)
            after(customer=keyed.customer, decision=decision, actor=api_key)
            raw.execute("COMMIT")
        events = written.events()
    else:
        events = _apply(keyed.customer, decision, actor=api_key, now=now, recording=recording)
    result = TrackResult(
        event=events[0], balances=decision.balances, reached=decision.reached, deductions=decision.deductions
    )
    return KeyedAnswer(keyed=keyed, track=result)
