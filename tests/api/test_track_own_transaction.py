"""A track on the lean path outside any transaction (as every request in production is) runs in a
transaction of its connection's own, sent in two round trips (BEGIN with the load, the store with the
COMMIT): concurrent tracks end exact, and every outcome ends the transaction, so the next request on the
pooled connection starts clean."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

from billing.models import Balance, Event
from billing.services.products import product_attach
from customers.models import ApiKey
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create

pytestmark = pytest.mark.django_db(transaction=True)


def _track(client: Client, key: str, body: dict):
    return client.post(
        "/v1/balances.track", json.dumps(body), "application/json", headers={"Authorization": f"Bearer {key}"}
    )


@pytest.fixture
def setup(catalogue, ops):
    customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme")
    product_attach(customer=customer, product=catalogue["scale"], actor=ops)
    return customer, api_key_create(env="sandbox", name="Backend", actor=ops)[1]


def _open_transactions() -> int:
    """Connections to the test database left in a transaction (none may be, between requests)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


def test_eight_clients_tracking_one_balance_on_the_lean_path_end_exact(setup, catalogue):
    customer, key = setup
    threads, rounds = 8, 15
    statuses: list[int] = []
    barrier = threading.Barrier(threads)

    def work() -> None:
        try:
            barrier.wait(timeout=10)
            client = Client()
            for _ in range(rounds):
                statuses.append(_track(client, key, {"customer_id": "acme_corp", "feature_id": "messages"}).status_code)
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
    assert Event.objects.filter(customer=customer, feature=catalogue["messages"]).count() == threads * rounds
    assert _open_transactions() == 0


def test_a_track_the_lean_path_hands_on_leaves_nothing_open_and_notes_the_keys_use(setup):
    _customer, key = setup
    ApiKey.objects.update(last_used_at=None)
    client = Client()
    flag = _track(client, key, {"customer_id": "acme_corp", "feature_id": "sso"})
    unknown = _track(client, key, {"customer_id": "nobody_here", "feature_id": "messages"})
    assert flag.status_code >= 400 and unknown.status_code == 404
    assert ApiKey.objects.get().last_used_at is not None
    # The same connection answers the next track at once: no transaction was left behind.
    assert (
        _track(client, key, {"customer_id": "acme_corp", "feature_id": "messages", "value": 2}).json()["balance"][
            "usage"
        ]
        == 2
    )
    assert _open_transactions() == 0
    assert Event.objects.count() == 1
