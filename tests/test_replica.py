"""The dashboard's read-only pages read a real streaming replica (DATABASE_REPLICA_URL); writes, reads
inside a change and the API read the primary; a person who has just changed something sees it on
the next page even while the replica lags (replay paused with pg_wal_replay_pause()).

Runs against DATABASE_REPLICA_URL, a streaming replica of the test database's server (.ci/run makes one on
5433), or, without it, the replica the test session makes itself of the server the tests use (tests/servers:
the embedded PostgreSQL, or DATABASE_URL's when on this machine and allowing replication). Skipped with the
reason when there is none, a failure under REQUIRE_REPLICA=1.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from autumn_admin.dashboard.replica import COOKIE
from billing.models import Balance
from customers.models import Customer
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create, customer_update
from tests.helpers import CONTACT, page_text
from tests.servers import replica_missing, replica_routing

pytestmark = [
    # Without a replica configured the alias does not exist: the tests skip (the fixture below).
    pytest.mark.django_db(
        transaction=True, databases=["default", "replica"] if "replica" in settings.DATABASES else None
    ),
]

PAGE = "/customers/acme_corp/"
EDIT = "/customers/acme_corp/details/edit/"


@pytest.fixture(autouse=True)
def replica(request, settings):
    if "replica" not in settings.DATABASES:
        if os.environ.get("REQUIRE_REPLICA") == "1":
            pytest.fail(f"REQUIRE_REPLICA=1 but there is no replica: {replica_missing(request.config)}")
        pytest.skip(replica_missing(request.config))
    replica_routing(settings)
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0], "DATABASE_REPLICA_URL must name a standby, not the primary"
    yield
    _resume()


def _replica_sql(sql: str, params=None):
    with connections["replica"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _resume() -> None:
    _replica_sql("SELECT pg_wal_replay_resume()::text")


def caught_up(timeout: float = 30) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        lsn = cursor.fetchone()[0]
    deadline = time.monotonic() + timeout
    while not _replica_sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]):
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


@contextmanager
def replay_paused():
    """The replica stops applying the primary's changes: it lags for as long as the block lasts."""
    caught_up()
    _replica_sql("SELECT pg_wal_replay_pause()::text")
    deadline = time.monotonic() + 10
    while _replica_sql("SELECT pg_get_wal_replay_pause_state()") != "paused":
        assert time.monotonic() < deadline, "replay did not pause"
        time.sleep(0.02)
    try:
        yield
    finally:
        _resume()


@pytest.fixture
def acme(catalogue):
    return customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme Corp", email="ada@acme.test")


@pytest.fixture
def support_client(support):
    from tests.helpers import DashboardClient

    c = DashboardClient()
    c.force_login(support)
    return c


def test_read_only_pages_are_served_by_the_replica(ops_client, acme):
    with replay_paused():
        customer_update(customer=acme, actor=None, name="Acme Renamed Elsewhere")  # e.g. by the API

        page, listing, search, export = (
            page_text(ops_client.get(PAGE)),
            page_text(ops_client.get("/customers/")),
            page_text(ops_client.get("/customers/?q=acme")),
            b"".join(ops_client.get("/exports/customers.csv").streaming_content).decode(),
        )

    # The replica had not replayed the rename yet: every read-only page shows the name it holds.
    for text in (page, listing, search, export):
        assert "Acme Corp" in text and "Acme Renamed Elsewhere" not in text
    caught_up()
    assert "Acme Renamed Elsewhere" in page_text(ops_client.get(PAGE))


def test_the_customer_page_reads_the_replica_and_only_the_session_from_the_primary(ops_client, acme):
    ops_client.get(PAGE)  # warm: the first request of a session loads more (permissions)
    caught_up()
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        response = ops_client.get(PAGE)

    assert response.status_code == 200
    tables = " ".join(q["sql"] for q in primary.captured_queries)
    assert "customers_" not in tables and "billing_" not in tables, tables
    assert len(primary.captured_queries) == 2  # the session, and the user with the role (one query)
    # The page's 12 reads, its entities and its referral codes (no invoices here: no credit notes to read).
    assert len(replica.captured_queries) == 14

    ops_client.cookies[COOKIE] = f"{time.time() + 60:.3f}"  # just changed something: all on the primary
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        assert ops_client.get(PAGE).status_code == 200
    assert (len(primary.captured_queries), len(replica.captured_queries)) == (2 + 14, 0)


def test_a_person_sees_their_own_change_on_the_next_page_while_the_replica_lags(ops_client, support_client, acme):
    with replay_paused():
        edited = ops_client.post(f"{EDIT}?field=name", {**CONTACT, "name": "Acme Corporation"})
        own_page = page_text(ops_client.get(PAGE))
        own_list = page_text(ops_client.get("/customers/?q=acme"))
        someone_else = page_text(support_client.get(PAGE))
        until = float(ops_client.cookies[COOKIE].value)

        ops_client.cookies[COOKIE] = f"{time.time() - 1:.3f}"  # the window has passed
        later = page_text(ops_client.get(PAGE))

    assert edited.status_code == 302 and edited.url == PAGE
    assert until == pytest.approx(time.time() + settings.REPLICA_READ_YOUR_WRITES_SECONDS, abs=10)
    assert edited.cookies[COOKIE]["max-age"] == settings.REPLICA_READ_YOUR_WRITES_SECONDS
    # Who made the change reads the primary: the new name on the next page and in the list.
    assert "Acme Corporation" in own_page and "Acme Corporation" in own_list
    # Someone else, and the same person once the window has passed, read the lagging replica.
    assert "Acme Corporation" not in someone_else and "Acme Corp" in someone_else
    assert "Acme Corporation" not in later
    assert Customer.objects.get(pk=acme.pk).name == "Acme Corporation"


def test_a_change_refused_as_stale_is_judged_on_the_primary(ops_client, acme):
    """The edit's stale-write check reads the row inside its transaction: on the primary, even when the
    replica still shows the old value the form was filled from."""
    with replay_paused():
        customer_update(customer=acme, actor=None, name="Acme Ltd")
        stale = ops_client.post(f"{EDIT}?field=name", {**CONTACT, "name": "Acme Corporation"}, HTTP_HX_REQUEST="true")

    assert stale.status_code == 409
    assert Customer.objects.get(pk=acme.pk).name == "Acme Ltd"


def test_the_api_reads_the_primary(client, ops, acme):
    _, key = api_key_create(env="sandbox", name="Backend", actor=ops)
    headers = {"Authorization": f"Bearer {key}"}
    with replay_paused():
        customer_update(customer=acme, actor=None, name="Acme Renamed")
        got = client.post(
            "/v1/customers.get", json.dumps({"customer_id": "acme_corp"}), "application/json", headers=headers
        )
        tracked = client.post(
            "/v1/balances.track",
            json.dumps({"customer_id": "acme_corp", "feature_id": "messages", "value": 3}),
            "application/json",
            headers=headers,
        )
        checked = client.post(
            "/v1/balances.check",
            json.dumps({"customer_id": "acme_corp", "feature_id": "messages"}),
            "application/json",
            headers=headers,
        )

    assert got.status_code == 200 and got.json()["name"] == "Acme Renamed"
    assert tracked.status_code == 200 and checked.json()["balance"]["remaining"] == 97
    assert Balance.objects.get(customer=acme).remaining == 97


def test_a_page_that_writes_reads_the_rest_from_the_primary(ops_client, acme):
    """The customer page's lazy balance reset writes: what it shows after that comes from the primary,
    and the person reads the primary for a while, as after any change."""
    from datetime import timedelta

    from django.utils import timezone

    balance = Balance.objects.get(customer=acme)
    Balance.objects.filter(pk=balance.pk).update(
        remaining=10, next_reset_at=timezone.now() - timedelta(minutes=1)
    )  # due: the page resets it to 100
    with replay_paused():
        response = ops_client.get(PAGE)

    assert response.status_code == 200
    assert COOKIE in response.cookies
    assert Balance.objects.get(pk=balance.pk).remaining == 100
