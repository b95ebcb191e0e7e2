"""store: one statement writes what `decide` returned — the balances it changed, the events (their ids
drawn from the events' sequence inside the statement, so a credit system's event can name the use it paid
for), the first event's idempotency key, each feature's day in the daily rollup, and each draw's credits on
its drawing feature's day (DailyCreditDraw). The only SQL that writes balances by usage. A reset is also
audited (rare: once per balance and period)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db import connection

from billing import rollup
from billing.engine.decide import Decision
from billing.engine.load import prepared_cursor
from billing.models import Balance, DailyCreditDraw, DailyUsage, Event, EventIdempotencyKey
from customers.audit import SYSTEM, AuditAction, audit_record
from customers.models import ApiKey, Customer


@dataclass
class Recording:
    """The fields every event of one request shares."""

    event_name: str
    properties: dict
    timestamp: datetime
    api_key: ApiKey | None
    idempotency_key: str | None
    now: datetime


_BALANCES = f"""b AS (
    UPDATE {Balance._meta.db_table} AS t
    SET remaining = v.remaining, adjustment = v.adjustment, next_reset_at = v.next_reset_at, updated_at = %s
    FROM (VALUES {{values}}) AS v(id, remaining, adjustment, next_reset_at)
    WHERE t.id = v.id
)"""
_BALANCE_VALUES = "(%s::bigint, %s::numeric, %s::numeric, %s::timestamptz)"

_EVENTS = f"""ev(i, feature_id, value, drawn_for) AS (VALUES {{values}}),
ids AS MATERIALIZED (SELECT ev.i, nextval(pg_get_serial_sequence('{Event._meta.db_table}', 'id')) AS id FROM ev),
e AS (
    INSERT INTO {Event._meta.db_table} (id, customer_id, feature_id, event_name, value, "timestamp", properties,
                                        idempotency_key, api_key_id, drawn_for_id, created_at)
    SELECT ids.id, %s, ev.feature_id, %s, ev.value, %s, %s, CASE WHEN ev.i = 0 THEN %s END, %s, d.id, %s
    FROM ev JOIN ids ON ids.i = ev.i LEFT JOIN ids d ON d.i = ev.drawn_for
),
k AS (
    INSERT INTO {EventIdempotencyKey._meta.db_table} (customer_id, idempotency_key, event_id, event_timestamp)
    SELECT %s, %s::varchar, ids.id, %s FROM ids WHERE ids.i = 0 AND %s::varchar IS NOT NULL
),
r AS (
    INSERT INTO {DailyUsage._meta.db_table} (customer_id, feature_id, day, value, events)
    SELECT %s, ev.feature_id, %s, sum(ev.value), count(*) FROM ev GROUP BY ev.feature_id
    {rollup.ADD_ON_CONFLICT}
)"""
# Only in a statement whose events include a draw: the credits each drawing feature took from each pool today.
_DRAWS = f"""c AS (
    INSERT INTO {DailyCreditDraw._meta.db_table} (customer_id, credit_system_id, feature_id, day, value)
    SELECT %s, ev.feature_id, u.feature_id, %s, sum(ev.value) FROM ev JOIN ev u ON u.i = ev.drawn_for
    GROUP BY ev.feature_id, u.feature_id
    {rollup.ADD_DRAW_ON_CONFLICT}
)"""
_EVENT_VALUES = "(%s::int, %s::bigint, %s::numeric, %s::int)"


@cache
def _statement(changed: int, events: int, draws: bool) -> str:
    """The store statement writing `changed` balances and `events` events, with the credits each draw took
    when `draws` (one text per shape)."""
    sql = []
    if changed:
        sql.append(_BALANCES.replace("{values}", ", ".join([_BALANCE_VALUES] * changed)))
    if events:
        sql.append(_EVENTS.replace("{values}", ", ".join([_EVENT_VALUES] * events)))
    if draws:
        sql.append(_DRAWS)
    answer = "SELECT ids.id FROM ids ORDER BY ids.i" if events else "SELECT 1"
    return "WITH " + ",\n".join(sql) + "\n" + answer


def store(customer: Customer, decision: Decision, *, now: datetime, recording: Recording | None = None) -> list[Event]:
    """Write `decision` in one statement (inside the caller's transaction, with the rows locked by
    `load`); returns the events written, in the decision's order. A repeated idempotency key raises
    IntegrityError (the caller answers as the first track did)."""
    return write(customer, decision, now=now, recording=recording).events()


class Written:
    """A store statement sent (or, in a pipeline, queued): `events()` reads its answer, the events' ids,
    and returns the events written."""

    def __init__(self, customer: Customer, decision: Decision, recording: Recording | None, cursor=None):
        self.customer, self.decision, self.recording, self.cursor = customer, decision, recording, cursor

    def events(self) -> list[Event]:
        if self.cursor is None:
            return []
        with self.cursor as cursor:
            ids = [row[0] for row in cursor.fetchall()] if self.decision.events else []
        customer, recording, events = self.customer, self.recording, []
        for pk, e in zip(ids, self.decision.events, strict=True):
            event = Event(
                id=pk,
                customer=customer,
                feature=e.feature,
                event_name=recording.event_name,
                value=e.value,
                timestamp=recording.timestamp,
                properties=recording.properties,
                idempotency_key=(recording.idempotency_key or None) if not events else None,
                api_key=recording.api_key,
                drawn_for=events[e.drawn_for] if e.drawn_for is not None else None,
                created_at=recording.now,
            )
            event._state.adding = False
            event._state.db = connection.alias
            events.append(event)
        return events


def write(customer: Customer, decision: Decision, *, now: datetime, recording: Recording | None = None) -> Written:
    """`store`'s statement and the resets' audit entries, sent; its answer read by `Written.events()`. Inside
    a pipeline (billing/engine/run.py, the track by key) the statement is queued, not waited for: what
    follows it (the COMMIT) goes to PostgreSQL in the same round trip."""
    if not decision.writes:
        return Written(customer, decision, recording)
    params, draws = [], False
    if decision.changed:
        params.append(now)
        for b in decision.changed:
            params += [b.pk, b.remaining, b.adjustment, b.next_reset_at]
    if decision.events:
        r = recording
        for i, e in enumerate(decision.events):
            params += [i, e.feature.pk, e.value, e.drawn_for]
        properties = Event._meta.get_field("properties").get_db_prep_value(r.properties, connection)
        key = r.idempotency_key or None
        api_key_id = r.api_key.pk if r.api_key else None
        params += [customer.pk, r.event_name, r.timestamp, properties, key, api_key_id, r.now]
        params += [customer.pk, key, r.timestamp, key]
        params += [customer.pk, rollup.day_of(r.timestamp)]
        draws = any(e.drawn_for is not None for e in decision.events)
        if draws:
            params += [customer.pk, rollup.day_of(r.timestamp)]
    # Prepared: one plan per connection for each shape (so many balances, so many events), as planning
    # this statement costs more than running it.
    cursor = prepared_cursor()
    try:
        cursor.execute(_statement(len(decision.changed), len(decision.events), draws), params)
    except BaseException:
        cursor.close()
        raise
    for reset in decision.resets:
        audit_record(
            actor=SYSTEM,
            action=AuditAction.BALANCE_RESET,
            customer=customer,
            target_type="balance",
            target_id=reset.balance.pk,
            before=reset.before,
            after=reset.after,
        )
    return Written(customer, decision, recording, cursor)
