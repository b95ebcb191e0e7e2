"""Prepared statements follow the connection's settings: the track statement is prepared once per
connection where PostgreSQL keeps it, and never behind PgBouncer in transaction mode (DATABASE_POOLER=
transaction), where the next transaction may run on another server connection.

.ci/run runs the API, concurrency and Stripe webhook tests through PgBouncer with this file (DATABASE_URL
on its port, DATABASE_POOLER=transaction). On a direct connection the first test checks the prepared
statements, and the others go through a PgBouncer the test session starts itself (tests/servers) where
the `pgbouncer` program is installed: the app's connections are pointed at it, with the settings
DATABASE_POOLER=transaction gives them, for as long as they run. Without the program they are skipped
with the reason; REQUIRE_PGBOUNCER=1 makes that a failure.
"""

from __future__ import annotations

import json
import os
import threading

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections

from billing.models import Balance, Event
from billing.services.products import product_attach
from customers.services.api_keys import api_key_create
from tests.servers.pgbouncer import NOT_INSTALLED, installed

BEHIND_POOLER = settings.BEHIND_TRANSACTION_POOLER


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _track(client, key: str, customer_id: str = "acme_corp", value: int = 1):
    return client.post(
        "/v1/balances.track",
        json.dumps({"customer_id": customer_id, "feature_id": "messages", "value": value}),
        "application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def _pgbouncer_config() -> dict[str, str]:
    """PgBouncer's own settings, from its admin console on the port the tests connect to."""
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], dbname="pgbouncer", autocommit=True, prepare_threshold=None
    ) as admin:
        rows = admin.execute("SHOW CONFIG").fetchall()
    return {row[0]: row[1] for row in rows}


@pytest.fixture
def key(ops):
    return api_key_create(env="sandbox", name="Backend", actor=ops)[1]


@pytest.mark.skipif(BEHIND_POOLER, reason="prepared statements are off behind a transaction pooler")
def test_the_engines_load_and_store_statements_are_prepared_once_on_a_direct_connection(client, customer, key):
    before = len(_prepared_statements())
    for _ in range(3):
        assert _track(client, key).status_code == 200

    prepared = _prepared_statements()
    assert len(prepared) == before + 2  # the engine's load and its store, each planned once for three tracks
    store = [p for p in prepared if "INSERT INTO billing_event" in p]
    assert len(store) == 1 and "billing_balance" in store[0]
    assert Balance.objects.get(customer=customer).remaining == 97


def _route_default(**route) -> None:
    """Point the app's connections (every thread's: they share this dict) somewhere else from now on."""
    connection.close()
    connection.close_pool()  # the pool's connections were made with the old route
    connection.settings_dict.update(route)


@pytest.fixture(scope="class")
def through_pgbouncer(request):
    """The app talks to PostgreSQL through PgBouncer in transaction mode: the run's own (DATABASE_POOLER=
    transaction), else the session's. Class-scoped, so that it is in place before the test's database
    transaction begins."""
    if BEHIND_POOLER:
        yield
        return
    if not installed():
        if os.environ.get("REQUIRE_PGBOUNCER") == "1":
            pytest.fail(f"REQUIRE_PGBOUNCER=1 but {NOT_INSTALLED}")
        pytest.skip(NOT_INSTALLED)
    bouncer = request.getfixturevalue("pgbouncer")
    db = connection.settings_dict
    direct = {key: db[key] for key in ("HOST", "PORT", "OPTIONS", "DISABLE_SERVER_SIDE_CURSORS")}
    # What settings.py makes of DATABASE_URL on PgBouncer's port with DATABASE_POOLER=transaction.
    _route_default(
        HOST="127.0.0.1",
        PORT=str(bouncer.port),
        OPTIONS={**db["OPTIONS"], "prepare_threshold": None},
        DISABLE_SERVER_SIDE_CURSORS=True,
    )
    yield
    _route_default(**direct)


@pytest.mark.usefixtures("through_pgbouncer")
class TestThroughPgBouncer:
    def test_the_suite_talks_to_postgresql_through_pgbouncer_in_transaction_mode(self, db):
        config = _pgbouncer_config()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('port')::int")  # PostgreSQL's own, also on a Unix socket
            server_port = cursor.fetchone()[0]

        assert config["pool_mode"] == "transaction"
        assert int(config["listen_port"]) == int(connection.settings_dict["PORT"]) != server_port
        assert connection.connection.prepare_threshold is None
        assert connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True

    def test_tracks_through_pgbouncer_prepare_nothing_and_count_exactly(self, client, customer, key):
        for _ in range(5):
            response = _track(client, key)
            assert response.status_code == 200

        assert _prepared_statements() == []
        assert response.json()["balance"]["remaining"] == 95
        assert Event.objects.filter(customer=customer).count() == 5

    @pytest.mark.django_db(transaction=True)
    def test_concurrent_api_tracks_through_pgbouncer_lose_nothing(self, catalogue, ops):
        """Sixteen clients, each with its own connection to PgBouncer, whose transactions interleave on
        its shared server connections: every track is counted once, and none fails on a statement that
        another client's transaction prepared."""
        from django.test import Client

        from customers.services.customers import customer_create

        customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme")
        product_attach(customer=customer, product=catalogue["scale"], actor=ops)
        key = api_key_create(env="sandbox", name="Backend", actor=ops)[1]
        threads, rounds = 16, 10
        statuses: list[int] = []
        barrier = threading.Barrier(threads)

        def work() -> None:
            try:
                barrier.wait(timeout=10)
                c = Client()
                for _ in range(rounds):
                    statuses.append(_track(c, key).status_code)
            finally:
                connections.close_all()

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)

        assert statuses == [200] * (threads * rounds)
        messages = Balance.objects.get(customer=customer, feature=catalogue["messages"])
        assert messages.granted - messages.remaining == threads * rounds
        assert Event.objects.filter(customer=customer).count() == threads * rounds
