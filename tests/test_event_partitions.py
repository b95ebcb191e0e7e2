"""billing_event partitioned by month on PostgreSQL (billing/partitions.py): partitions made ahead by a
command, old months dropped by another (with a dry run), events outside every month kept in the default
partition, idempotency kept across partitions, and the migration from a plain table keeping every row."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, connections

from billing import partitions
from billing.models import Balance, Event, EventIdempotencyKey
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.services.api_keys import api_key_create

TODAY = datetime.now(UTC).date()
THIS_MONTH = partitions.month_start(TODAY)


def _where(event_id: int) -> str:
    """The partition holding the event."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM billing_event WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def _names() -> list[str]:
    return [p.name for p in partitions.partitions()]


def _command(name: str, *args, **kwargs) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, **kwargs)
    return out.getvalue()


def _at(month: date, day: int = 10) -> datetime:
    return datetime(month.year, month.month, day, 12, tzinfo=UTC)


def test_events_are_partitioned_by_month_from_this_one_to_three_ahead_with_a_default(db):
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid
               AND a.attnum = ANY(x.indkey) WHERE x.indrelid = 'billing_event'::regclass AND x.indisprimary
               ORDER BY a.attnum"""
        )
        key = [row[0] for row in cursor.fetchall()]

    assert partitions.is_partitioned()
    assert key == ["id", "timestamp"]
    months = [partitions.partition_name(partitions.add_months(THIS_MONTH, n)) for n in range(4)]
    assert set(months) <= set(_names()) and _names()[-1] == "billing_event_default"


def test_an_event_timestamped_years_back_is_stored_in_the_default_partition_and_listed(client, customer, ops):
    _, key = api_key_create(env="sandbox", name="Backend", actor=ops)
    headers = {"Authorization": f"Bearer {key}"}
    long_ago = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)
    body = {
        "customer_id": "acme_corp",
        "feature_id": "messages",
        "value": 2,
        "timestamp": int(long_ago.timestamp() * 1000),
    }

    tracked = client.post("/v1/balances.track", json.dumps(body), "application/json", headers=headers)
    listed = client.post(
        "/v1/events.list", json.dumps({"customer_id": "acme_corp"}), "application/json", headers=headers
    )

    assert tracked.status_code == 200 and tracked.json()["balance"]["remaining"] == 98
    event = Event.objects.get(customer=customer)
    assert event.timestamp == long_ago and _where(event.pk) == "billing_event_default"
    assert [e["timestamp"] for e in listed.json()["list"]] == [int(long_ago.timestamp() * 1000)]


def test_the_partitions_command_is_idempotent_and_moves_default_rows_into_new_months(customer, catalogue):
    far = partitions.add_months(THIS_MONTH, 5)
    early = balance_track(customer=customer, feature=catalogue["messages"], value=1, actor=None, timestamp=_at(far))
    assert _where(early.event.pk) == "billing_event_default"

    first = _command("event_partitions", ahead=6)
    again = _command("event_partitions", ahead=6)

    made = [partitions.partition_name(partitions.add_months(THIS_MONTH, n)) for n in (4, 5, 6)]
    assert all(f"Created {name}." in first for name in made)
    assert again.startswith("0 created;")
    assert _where(early.event.pk) == partitions.partition_name(far)
    assert Event.objects.get(pk=early.event.pk).value == 1


def test_retention_dry_run_changes_nothing_and_the_run_drops_only_old_months(customer, catalogue):
    old = partitions.add_months(THIS_MONTH, -14)
    partitions.ensure_partitions(ahead=2, today=old)  # months 14, 13 and 12 ago
    track = catalogue["messages"]
    kept = balance_track(customer=customer, feature=track, value=1, actor=None, timestamp=_at(THIS_MONTH, 1))
    ancient = datetime(2015, 1, 1, tzinfo=UTC)  # before every partition: in the default one
    gone = [
        balance_track(customer=customer, feature=track, value=1, actor=None, timestamp=at, idempotency_key=f"k{n}")
        for n, at in enumerate([_at(old), _at(partitions.add_months(old, 1)), ancient])
    ]

    dry = _command("event_retention", keep_months=12, dry_run=True)
    assert Event.objects.count() == 4 and EventIdempotencyKey.objects.count() == 3
    real = _command("event_retention", keep_months=12)

    names = [partitions.partition_name(partitions.add_months(old, n)) for n in range(3)]
    assert f"Would drop {names[0]} (1 events)." in dry and "Nothing was changed (--dry-run)." in dry
    assert "Would drop 3 month(s)" in dry and "3 events, 3 idempotency keys" in dry
    assert f"Dropped {names[2]} (0 events)." in real
    assert not set(names) & set(_names())
    assert list(Event.objects.values_list("pk", flat=True)) == [kept.event.pk]
    assert not EventIdempotencyKey.objects.exists()
    assert all(g.event.pk not in Event.objects.values_list("pk", flat=True) for g in gone)


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_record_one_event(catalogue, ops):
    """Eight retries of one track, at once, each stamped when it arrives (so in the unique index of no
    single partition): one event is written and drawn once; every retry answers with that event."""
    from customers.services.customers import customer_create

    customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme")
    product_attach(customer=customer, product=catalogue["scale"], actor=ops)
    feature = catalogue["api_calls"]
    threads = 8
    barrier = threading.Barrier(threads)
    results, errors = [], []

    def retry(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(
                balance_track(
                    customer=customer,
                    feature=feature,
                    value=Decimal(5),
                    actor=None,
                    idempotency_key="order-42",
                    timestamp=datetime.now(UTC) + timedelta(milliseconds=n),
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=retry, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)

    assert errors == []
    event = Event.objects.get(customer=customer)
    assert {r.event.pk for r in results} == {event.pk} and sum(not r.replayed for r in results) == 1
    balance = Balance.objects.get(customer=customer, feature=feature)
    assert balance.granted - balance.remaining == 5
    key = EventIdempotencyKey.objects.get(customer=customer)
    assert (key.idempotency_key, key.event_id, key.event_timestamp) == ("order-42", event.pk, event.timestamp)


@pytest.mark.django_db(transaction=True)
def test_the_migration_from_a_plain_table_keeps_every_event_id_index_and_key(catalogue):
    """What migration 0014 does, on a plain table holding events over fourteen months (in batches)."""
    from customers.services.customers import customer_create

    customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme")
    partitions.unpartition_table()
    assert not partitions.is_partitioned()
    start = datetime.now(UTC) - timedelta(days=420)
    Event.objects.bulk_create(
        Event(customer=customer, feature=catalogue["messages"], value=1, timestamp=start + timedelta(hours=7 * n))
        for n in range(1_440)
    )
    before = dict(Event.objects.values_list("pk", "timestamp"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'billing_event' ORDER BY 1")
        indexes = [row[0] for row in cursor.fetchall()]

    seen: dict[str, object] = {}

    def during_the_copy(progress: str) -> None:
        """From another connection, while the copy runs: a read answers, a write waits for the commit."""
        if seen:
            return
        s = connection.settings_dict
        with psycopg.connect(
            host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"], dbname=s["NAME"], autocommit=True
        ) as other:
            other.execute("SET statement_timeout = '5s'")
            seen["read"] = other.execute("SELECT count(*) FROM billing_event").fetchone()[0]
            other.execute("SET lock_timeout = '200ms'")
            try:
                other.execute(
                    "INSERT INTO billing_event (customer_id, event_name, value, timestamp, properties, created_at)"
                    " VALUES (%s, '', 1, now(), '{}', now())",
                    [customer.pk],
                )
                seen["write"] = "written"
            except psycopg.errors.LockNotAvailable:
                seen["write"] = "waits"

    stats = partitions.partition_table(batch=500, out=during_the_copy)

    assert seen == {"read": 1_440, "write": "waits"}

    assert partitions.is_partitioned() and stats["events"] == 1_440
    assert dict(Event.objects.values_list("pk", "timestamp")) == before
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'billing_event' ORDER BY 1"
        )  # the partitioned parent's own indexes, same names
        assert [row[0] for row in cursor.fetchall()] == indexes
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'billing_event'::regclass AND contype = 'f'"
        )
        assert cursor.fetchone()[0] == 3  # customer, feature, api key
    months = {partitions.month_start(t.date()) for t in before.values()}
    assert {partitions.partition_name(m) for m in months} <= set(_names())
    new = Event.objects.create(customer=customer, feature=catalogue["messages"], value=1)
    assert new.pk > max(before)
