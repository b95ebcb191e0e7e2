"""Recording usage (track): the balances drawn down and the event written in one transaction, on PostgreSQL
in the common case as one prepared statement, also by the API key and ids of a request (`balance_track_by_key`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing import rollup
from billing.credits import credit_costs_of, credits_for
from billing.models import (
    Balance,
    CustomerProduct,
    Event,
    EventIdempotencyKey,
    Feature,
    FeatureType,
    Price,
    Product,
)
from billing.quantities import MAX_ABS, ZERO, parse_quantity
from billing.services.balances import draw_order, feature_balances, reset_if_due
from billing.services.statements import Row, balance_from_row, from_row, optional_from_row, prepared_cursor, select_list
from customers.audit import Actor
from customers.errors import ServiceError
from customers.models import ApiKey, Customer
from customers.services.api_keys import API_KEY_LAST_USED_RESOLUTION


@dataclass
class Deduction:
    """What one track took from one balance, in that balance's units (credits for a credit system's)."""

    balance: Balance
    value: Decimal


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


@dataclass
class _Draw:
    """A balance a track may draw from, and what one unit of the tracked feature costs there: 1 on a
    balance of the feature itself, the schema's credit cost on a credit system's balance."""

    balance: Balance
    cost: Decimal = Decimal(1)
    own: bool = True  # a balance of the tracked feature itself (else a credit system's)
    taken: Decimal = ZERO
    reached: bool = False  # did the track come to it (with something left to draw or give back)?

    def take(self, amount: Decimal) -> None:
        self.balance.remaining -= amount
        self.taken += amount


def _deduct(balances: list[Balance], value: Decimal) -> Decimal:
    """`_draw` from the balances of one feature, in order (no credit system in reach)."""
    return _draw([_Draw(balance=b) for b in balances], value)


def _draw(draws: list[_Draw], value: Decimal) -> Decimal:
    """Draw `value` units of a feature from its draws in order: the feature's own balances first (in the
    draw order), then the credit systems that list it, at their cost (Autumn's order). Returns what the
    feature's event records: the full value of a use, and of a refund only what it gave back.

    Positive remainders are used first, across all of them; what is left goes negative on the first that
    allows overage (up to its usage limit), and is otherwise dropped: without overage a balance stops at
    0 while the event keeps the full value. An unlimited balance of the feature itself takes everything
    and changes nothing; an unlimited pool takes whatever reaches it. What is still to draw is kept as an
    exact fraction of a unit, so a pool at 0.3 credits a unit that covers part of a use leaves the rest
    exactly; each amount taken is a whole number of millionths (`credits_for`).

    A refund never gives back more than was used (Autumn's `calculateDeduction` caps it at the balance's
    ceiling): what it could not give back was never used, so the event records only what it gave, and
    the events of a balance sum to its usage."""
    own_unlimited = [d for d in draws if d.balance.unlimited and d.own]
    if own_unlimited:
        own_unlimited[0].taken = value
        return value
    if value < 0:
        # A refund gives usage back to the feature's own balances first, in the reverse draw order, then to
        # the credit systems (Autumn's order: credits another feature used stay used while its own has any).
        rest = Fraction(-value)
        for d in [d for d in reversed(draws) if d.own] + [d for d in reversed(draws) if not d.own]:
            d.reached = True
            if d.balance.unlimited:
                continue
            need = credits_for(rest, d.cost)
            give = min(need, d.balance.usage)
            if give > 0:
                d.take(-give)
                rest = Fraction(0) if give == need else rest - Fraction(give) / Fraction(d.cost)
            if rest == 0:
                return value
        return -credits_for(Fraction(-value) - rest, Decimal(1))
    rest = Fraction(value)
    for d in draws:
        d.reached = True
        need = credits_for(rest, d.cost)
        if d.balance.unlimited:
            d.taken += need
            return value
        take = min(need, max(d.balance.remaining, ZERO))
        if take > 0:
            d.take(take)
            rest = Fraction(0) if take == need else rest - Fraction(take) / Fraction(d.cost)
        if rest == 0:
            return value
    for d in draws:
        b = d.balance
        if b.overage_allowed:
            d.reached = True
            floor = b.granted - b.usage_limit if b.usage_limit is not None else -MAX_ABS
            # Overage stops at the usage limit, and at the largest quantity kept (-10^15): the event
            # still records the full value, as a balance without overage stops at 0.
            d.take(b.remaining - max(b.remaining - credits_for(rest, d.cost), floor, -MAX_ABS))
            return value
    return value


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
) -> TrackResult:
    """Record usage of `feature` (or of each of `features`, as a track by event name does): deduct it from
    the customer's balances — the feature's own first, then the credit systems that list it, at their
    cost — and write the events, atomically.

    The balance rows are locked (in id order, so concurrent tracks never deadlock) before they
    are read, so concurrent tracks and edits never lose an update.
    """
    features = features or [feature]
    for f in features:
        if f.type == FeatureType.BOOLEAN:
            raise ServiceError(
                f"{f.feature_id} is an on/off feature: there is no usage to track.", code="invalid_inputs"
            )
    value = parse_quantity(value, field="value")
    now = now or timezone.now()
    recorded = {  # what the event row holds, on either path
        "event_name": event_name or "",
        "properties": properties or {},
        "timestamp": timestamp or now,
        "api_key": actor if isinstance(actor, ApiKey) else None,
    }
    if not idempotency_key and len(features) == 1:
        fast = _track_in_one_statement(customer=customer, feature=features[0], value=value, now=now, **recorded)
        if fast is not None:
            return fast
    if idempotency_key:
        existing = EventIdempotencyKey.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replayed(customer, features, existing.event())
    try:
        return _track_locked(
            customer=customer, features=features, value=value, idempotency_key=idempotency_key, now=now, **recorded
        )
    except IntegrityError:
        if not idempotency_key:
            raise
        # A concurrent track with the same key committed first: answer as it did.
        key = EventIdempotencyKey.objects.get(customer=customer, idempotency_key=idempotency_key)
        return _replayed(customer, features, key.event())


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
    reset_if_due(locked, now)
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


def _replayed(customer: Customer, features: list[Feature], event: Event) -> TrackResult:
    """The answer to a track repeated with the Idempotency-Key of `event`: that event, and the balances now."""
    schema = credit_costs_of(features)
    reached = {f: feature_balances(customer, f) for f in features}
    for line in (line for f in features for line in schema.get(f.pk, [])):
        reached.setdefault(line.credit_system, feature_balances(customer, line.credit_system))
    return TrackResult(event=event, balances=reached[features[0]], replayed=True, reached=reached)


def _track_locked(
    *,
    customer: Customer,
    features: list[Feature],
    value: Decimal,
    event_name: str,
    properties: dict,
    timestamp: datetime,
    api_key: ApiKey | None,
    idempotency_key: str | None,
    now: datetime,
) -> TrackResult:
    """The general track, in one transaction: lock the customer's balances (not expired) of the features and
    of the credit systems that list them, all in one statement in id order; reset those due; deduct each
    feature in its draw order (own balances, then each credit system at its cost); save them; and write an
    event per feature, an event per credit system drawn (its value in credits, `drawn_for` the feature's
    event), and their day's usage."""
    schema = credit_costs_of(features)
    systems = {line.credit_system_id: line.credit_system for f in features for line in schema.get(f.pk, [])}
    by_pk = {f.pk: f for f in [*features, *systems.values()]}
    with transaction.atomic():
        locked = Balance.objects.select_for_update().filter(customer=customer, feature_id__in=list(by_pk))
        grouped: dict[int, list[Balance]] = {pk: [] for pk in by_pk}
        stored = {}
        for b in locked.order_by("id"):
            b.customer = customer
            b.feature = by_pk[b.feature_id]
            stored[b.pk] = (b.remaining, b.adjustment, b.next_reset_at)
            reset_if_due(b, now)
            if b.expires_at is None or b.expires_at > now:
                grouped[b.feature_id].append(b)
        grouped = {pk: draw_order(group) for pk, group in grouped.items()}
        deductions: list[Deduction] = []
        came_to: set[int] = set()  # the credit systems a track fell through to
        events = []
        for i, feature in enumerate(features):
            draws = [_Draw(balance=b) for b in grouped[feature.pk]]
            for line in schema.get(feature.pk, []):
                draws += [_Draw(balance=b, cost=line.credit_cost, own=False) for b in grouped[line.credit_system_id]]
            recorded_value = _draw(draws, value)
            deductions += [Deduction(balance=d.balance, value=d.taken) for d in draws if d.taken]
            came_to.update(d.balance.feature_id for d in draws if d.reached and not d.own)
            event = Event(
                customer=customer,
                feature=feature,
                event_name=event_name,
                value=recorded_value,
                timestamp=timestamp,
                properties=properties,
                idempotency_key=(idempotency_key or None) if i == 0 else None,
                api_key=api_key,
                created_at=now,
            )
            event.save()
            if i == 0 and idempotency_key:  # unique per customer: a concurrent retry fails here and replays
                EventIdempotencyKey.objects.create(
                    customer=customer,
                    idempotency_key=idempotency_key,
                    event_id=event.pk,
                    event_timestamp=event.timestamp,
                )
            events.append(event)
            drawn: dict[int, Decimal] = {}
            for d in draws:
                if not d.own and d.taken:
                    drawn[d.balance.feature_id] = drawn.get(d.balance.feature_id, ZERO) + d.taken
            for system_pk, credits in drawn.items():
                events.append(
                    Event(
                        customer=customer,
                        feature=by_pk[system_pk],
                        event_name=event_name,
                        value=credits,
                        timestamp=timestamp,
                        properties=properties,
                        api_key=api_key,
                        drawn_for=event,
                        created_at=now,
                    )
                )
        for group in grouped.values():
            for b in group:
                if (b.remaining, b.adjustment, b.next_reset_at) != stored[b.pk] or b.feature_id == features[0].pk:
                    b.save(update_fields=["remaining", "adjustment", "next_reset_at", "updated_at"])
        Event.objects.bulk_create([e for e in events if e.pk is None])
        for e in events:
            rollup.add(customer_id=customer.pk, feature_id=e.feature_id, moment=e.timestamp, value=e.value)
    reached = {f: grouped[f.pk] for f in features}
    reached.update({system: grouped[pk] for pk, system in systems.items() if pk in came_to and system not in reached})
    return TrackResult(event=events[0], balances=grouped[features[0].pk], reached=reached, deductions=deductions)


# The common track, on PostgreSQL, in one statement and one round trip: the customer has exactly one
# balance of the feature that has not expired, it is limited and not due for a reset (so the draw order
# has nothing to choose; expired grants are skipped here as everywhere). The UPDATE takes the row lock, so
# concurrent tracks queue on it exactly as in the general path, and the lock is held for one
# statement and the commit instead of four round trips. The CASE is `_deduct` for a single balance
# (tests/test_track_fast_path.py checks the two agree case by case); anything else — several
# balances, a refund of more than the balance's usage (its event records only what was given back), a
# due reset, an unlimited balance, no balance, an idempotency key, a use of a feature that a credit system
# lists which its own balance does not cover (it falls through to the pool) — takes the general path
# (`_track_locked`), which this statement then has not touched.
def _track_statement(
    *, customer: str, feature: str, api_key: str, before: str = "", after: str = "", columns: str = "", joins: str = ""
) -> str:
    """The one-statement track, with the customer, feature and key given as SQL expressions; `before` and
    `after`: more CTEs (ending, resp. starting, with a comma), `columns` and `joins`: more of the answer."""
    return (
        (
            "WITH "
            + before
            + """
b AS (
    UPDATE billing_balance AS t SET
        remaining = CASE
            WHEN %(v)s < 0 THEN t.remaining + GREATEST(0, LEAST(-(%(v)s), t.allowance + t.adjustment - t.remaining))
            WHEN %(v)s <= GREATEST(t.remaining, 0) THEN t.remaining - %(v)s
            WHEN NOT t.overage_allowed THEN t.remaining - GREATEST(t.remaining, 0)
            WHEN t.usage_limit IS NULL THEN GREATEST(t.remaining - %(v)s, %(floor)s)
            ELSE GREATEST(t.remaining - %(v)s, t.allowance + t.adjustment - t.usage_limit, %(floor)s)
        END,
        updated_at = %(now)s
    WHERE t.customer_id = {customer} AND t.feature_id = {feature} AND NOT t.unlimited
      AND (t.next_reset_at IS NULL OR t.next_reset_at > %(now)s OR t.interval = 'lifetime')
      AND (t.expires_at IS NULL OR t.expires_at > %(now)s)
      AND (%(v)s >= 0 AND %(v)s <= t.remaining
           OR NOT EXISTS (SELECT 1 FROM billing_creditcost cc WHERE cc.metered_feature_id = t.feature_id))
      AND (%(v)s >= 0 OR -(%(v)s) <= t.allowance + t.adjustment - t.remaining)
      AND NOT EXISTS (SELECT 1 FROM billing_balance o
                      WHERE o.customer_id = t.customer_id AND o.feature_id = t.feature_id AND o.id <> t.id
                        AND (o.expires_at IS NULL OR o.expires_at > %(now)s))
    RETURNING {balance_columns}
), e AS (
    INSERT INTO billing_event (customer_id, feature_id, event_name, value, "timestamp", properties,
                               idempotency_key, api_key_id, created_at)
    SELECT b.customer_id, b.feature_id, %(event_name)s, %(v)s, %(timestamp)s, %(properties)s, NULL, {api_key},
           %(now)s
    FROM b
    RETURNING id
), r AS (
    INSERT INTO billing_dailyusage (customer_id, feature_id, day, value, events)
    SELECT b.customer_id, b.feature_id, %(day)s, %(v)s, 1 FROM b
    """
            + rollup.ADD_ON_CONFLICT
            + """
)"""
            + after
            + """
SELECT e.id, b.*, {cp_columns}, {product_columns}"""
            + (", " + columns if columns else "")
            + """
FROM b CROSS JOIN e
LEFT JOIN billing_customerproduct cp ON cp.id = b.customer_product_id
LEFT JOIN billing_product p ON p.id = cp.product_id
"""
            + joins
        )
        .replace("{customer}", customer)
        .replace("{feature}", feature)
        .replace("{api_key}", api_key)
        .replace("{balance_columns}", select_list("t", Balance))
        .replace("{cp_columns}", select_list("cp", CustomerProduct))
        .replace("{product_columns}", select_list("p", Product))
    )


_TRACK_SQL = _track_statement(customer="%(customer)s", feature="%(feature)s", api_key="%(api_key)s")

# The same track for a request that names the customer and feature by their ids and brings its secret
# key (/v1/balances.track): the key, customer and feature are looked up inside the statement, the key's
# last use is noted (at most once a minute), and the answer's usage price comes back with the rest.
# No row: the key, customer or feature is unknown, or the track is not the common case — nothing was
# written, and the caller takes the general path (which gives the right error).
_TRACK_BY_REFERENCE_SQL = _track_statement(
    before="""k AS (
    SELECT id FROM customers_apikey WHERE key_hash = %(key_hash)s AND env = %(env)s AND revoked_at IS NULL
), c AS (
    SELECT """
    + select_list("c", Customer)
    + """ FROM customers_customer c
    WHERE c.env = %(env)s AND c.customer_id = %(customer_id)s AND c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM k)
), f AS (
    SELECT """
    + select_list("f", Feature)
    + """ FROM billing_feature f
    WHERE f.feature_id = %(feature_id)s AND f.type <> 'boolean'
),""",
    after=""", u AS (
    UPDATE customers_apikey SET last_used_at = %(now)s
    WHERE id = (SELECT id FROM k) AND (last_used_at IS NULL OR last_used_at <= %(last_used_before)s)
      AND EXISTS (SELECT 1 FROM b)
)""",
    customer="(SELECT id FROM c)",
    feature="(SELECT id FROM f)",
    api_key="(SELECT id FROM k)",
    columns=", ".join(
        [
            "(SELECT id FROM k)",
            select_list("c", Customer),
            select_list("f", Feature),
            select_list("pr", Price),
        ]
    ),
    joins="""CROSS JOIN c CROSS JOIN f
LEFT JOIN LATERAL (SELECT * FROM billing_price WHERE product_id = cp.product_id AND type = 'usage'
                   AND feature_id = b.feature_id ORDER BY id LIMIT 1) pr ON TRUE""",
)


def _statement_values(*, value: Decimal, now: datetime, event_name: str, timestamp: datetime, properties: dict) -> dict:
    """The values every one-statement track binds: the quantity, its floor, the moment, and the event's fields."""
    return {
        "v": value,
        "floor": -MAX_ABS,
        "now": now,
        "event_name": event_name,
        "day": rollup.day_of(timestamp),
        "timestamp": timestamp,
        "properties": Event._meta.get_field("properties").get_db_prep_value(properties, connection),
    }


def _track_in_one_statement(
    *,
    customer: Customer,
    feature: Feature,
    value: Decimal,
    event_name: str,
    properties: dict,
    timestamp: datetime,
    api_key: ApiKey | None,
    now: datetime,
) -> TrackResult | None:
    with prepared_cursor() as cursor:
        cursor.execute(
            _TRACK_SQL,
            {
                **_statement_values(
                    value=value, now=now, event_name=event_name, timestamp=timestamp, properties=properties
                ),
                "customer": customer.pk,
                "feature": feature.pk,
                "api_key": api_key.pk if api_key else None,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _tracked(
        row,
        customer=customer,
        feature=feature,
        value=value,
        event_name=event_name,
        properties=properties,
        timestamp=timestamp,
        api_key_id=api_key.pk if api_key else None,
        now=now,
    )


def _tracked(
    row,
    *,
    customer: Customer,
    feature: Feature,
    value: Decimal,
    event_name: str,
    properties: dict,
    timestamp: datetime,
    api_key_id: int | None,
    now: datetime,
) -> TrackResult:
    """The result of a one-statement track from its row: event id, balance, customer product, product."""
    balance = balance_from_row(Row(row, start=1), customer=customer, feature=feature)
    event = Event(
        id=row[0],
        customer=customer,
        feature=feature,
        event_name=event_name,
        value=value,
        timestamp=timestamp,
        properties=properties,
        idempotency_key=None,
        api_key_id=api_key_id,
        created_at=now,
    )
    event._state.adding = False
    event._state.db = connection.alias
    return TrackResult(event=event, balances=[balance], reached={feature: [balance]})


@dataclass
class KeyedTrack:
    """A track made with `balance_track_by_key`: what it found by id, and the balance's usage price."""

    customer: Customer
    feature: Feature
    result: TrackResult
    usage_price: Price | None


def balance_track_by_key(
    *,
    key_hash: str,
    env: str,
    customer_id: str,
    feature_id: str,
    value,
    properties: dict | None = None,
    now: datetime | None = None,
) -> KeyedTrack | None:
    """`balance_track` of `value` for a caller that names the customer and feature by their ids and holds
    a secret key (the API's track): the key (active, of `env`), the live customer and the feature are
    found inside the track statement, so the whole request is one round trip.

    None when that does not apply — an unknown key, customer or feature, a
    boolean feature, or a track that is not the common case (see `_track_in_one_statement`): nothing was
    written, and the caller goes the general way (authenticate, look up, `balance_track`), which also
    gives the right error."""
    value = parse_quantity(value, field="value")
    now = now or timezone.now()
    properties = properties or {}
    with prepared_cursor() as cursor:
        cursor.execute(
            _TRACK_BY_REFERENCE_SQL,
            {
                **_statement_values(value=value, now=now, event_name="", timestamp=now, properties=properties),
                "key_hash": key_hash,
                "env": env,
                "customer_id": customer_id,
                "feature_id": feature_id,
                "last_used_before": now - API_KEY_LAST_USED_RESOLUTION,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    rest = Row(row, start=1).skip(Balance, CustomerProduct, Product)  # the track's own columns, read by `_tracked`
    api_key_id = rest.value()
    customer = from_row(Customer, rest.take(Customer))
    feature = from_row(Feature, rest.take(Feature))
    price_raw = rest.take(Price)
    result = _tracked(
        row,
        customer=customer,
        feature=feature,
        value=value,
        event_name="",
        properties=properties,
        timestamp=now,
        api_key_id=api_key_id,
        now=now,
    )
    return KeyedTrack(
        customer=customer,
        feature=feature,
        result=result,
        usage_price=optional_from_row(Price, price_raw),
    )
