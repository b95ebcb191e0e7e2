"""balances.batch_track (Autumn's): many tracks in one request, each by the one engine, all or none; and
the lean path in front of Django (autumn_admin/wsgi.py) answering the hot calls as the operations do."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core import signals
from django.db import close_old_connections

from autumn_admin.wsgi import application
from billing.models import Balance, Event
from customers.services.customers import customer_create


@pytest.fixture(autouse=True)
def _requests_keep_the_tests_connection():
    """As Django's test client does: a request's start and end don't close the test's connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def two_customers(catalogue, ops):
    return [customer_create(env="sandbox", customer_id=cid, actor=ops) for cid in ("batch_a", "batch_b")]


def _remaining(customer, feature_id):
    return Balance.objects.get(customer=customer, feature__feature_id=feature_id).remaining


def test_a_batch_records_every_track(api, two_customers):
    a, b = two_customers
    response = api.post(
        "balances.batch_track",
        [
            {"customer_id": "batch_a", "feature_id": "messages", "value": 3},
            {"customer_id": "batch_b", "feature_id": "messages", "value": 2.5, "properties": {"k": 1}},
            {"customer_id": "batch_a", "feature_id": "messages"},
        ],
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    assert (_remaining(a, "messages"), _remaining(b, "messages")) == (Decimal(96), Decimal("97.5"))
    assert Event.objects.filter(customer=a).count() == 2 and Event.objects.get(customer=b).properties == {"k": 1}


def test_a_batch_by_event_name_and_with_idempotency_keys_records_each_once(api, two_customers):
    a, _ = two_customers
    batch = [
        {"customer_id": "batch_a", "event_name": "message_sent", "value": 4, "idempotency_key": "m-1"},
        {"customer_id": "batch_a", "feature_id": "messages", "value": 1, "idempotency_key": "m-2"},
    ]
    assert api.post("balances.batch_track", batch).status_code == 200
    assert api.post("balances.batch_track", batch).status_code == 200  # a retry: the keys record nothing more
    assert _remaining(a, "messages") == Decimal(95)
    assert Event.objects.filter(customer=a).count() == 2


def test_a_batch_with_an_unknown_customer_or_a_bad_item_records_nothing(api, two_customers):
    a, _ = two_customers
    ok = {"customer_id": "batch_a", "feature_id": "messages", "value": 3}
    response = api.post("balances.batch_track", [ok, {"customer_id": "nobody", "feature_id": "messages"}])
    assert response.status_code == 404 and response.json()["code"] == "customer_not_found"
    response = api.post(
        "balances.batch_track", [ok, {"customer_id": "batch_a", "feature_id": "messages", "value": "x"}]
    )
    assert response.status_code == 422 and "1.value" in response.json()["message"]
    assert api.post("balances.batch_track", []).status_code == 422
    assert api.post("balances.batch_track", {"customer_id": "batch_a"}).status_code == 400
    assert api.post("balances.batch_track", [ok] * 1001).status_code == 422
    assert not Event.objects.filter(customer=a).exists() and _remaining(a, "messages") == 100


# --- the lean path, as the WSGI server calls it ----------------------------------------------------------


def _wsgi(path, body, key, **headers):
    raw = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/v1/{path}",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        **{f"HTTP_{k.upper()}": v for k, v in headers.items()},
    }
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"] = int(status.split()[0])
        started["headers"] = dict(response_headers)

    payload = b"".join(application(environ, start_response))
    return started["status"], json.loads(payload), started["headers"]


def test_the_wsgi_lean_path_answers_the_hot_calls_as_the_operations_do(api, sandbox_key, two_customers):
    a, b = two_customers
    key = sandbox_key[1]
    track = {"feature_id": "messages", "value": 7, "properties": {"via": "wsgi"}}
    status, lean, headers = _wsgi("balances.track", {"customer_id": "batch_a", **track}, key)
    operation = api.post("balances.track", {"customer_id": "batch_b", **track}, headers={"Idempotency-Key": "op-1"})
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    expected = operation.json()
    expected["customer_id"] = "batch_a"
    for answer in (lean, expected):  # each customer's own balance, created a moment apart
        answer["balance"]["next_reset_at"] = answer["balance"]["breakdown"][0]["reset"] = None
        answer["balance"]["breakdown"][0]["id"] = None
    assert lean == expected
    assert _remaining(a, "messages") == 93 and Event.objects.get(customer=a).properties == {"via": "wsgi"}

    check = {"customer_id": "batch_a", "feature_id": "messages", "required_balance": 93}
    status, lean, _ = _wsgi("balances.check", check, key)
    assert status == 200 and lean == api.post("balances.check", check, headers={"Idempotency-Key": "op-2"}).json()
    assert lean["allowed"] and lean["balance"]["remaining"] == 93

    status, lean, _ = _wsgi("check", check, key)  # the 1.2 form
    assert status == 200 and lean == api.post("check", check).json()

    status, answer, _ = _wsgi("track", {"customer_id": "batch_a", "feature_id": "messages"}, key)
    assert (status, answer) == (200, {"customer_id": "batch_a", "feature_id": "messages"})
    status, answer, _ = _wsgi("balances.batch_track", [{"customer_id": "batch_a", "feature_id": "messages"}] * 2, key)
    assert (status, answer) == (200, {"success": True})
    assert _remaining(a, "messages") == 90


def test_what_the_lean_path_does_not_serve_gets_the_operations_answer(sandbox_key, two_customers):
    key = sandbox_key[1]
    status, answer, _ = _wsgi("balances.track", {"customer_id": "nobody", "feature_id": "messages"}, key)
    assert status == 404 and answer["code"] == "customer_not_found"
    status, answer, _ = _wsgi("balances.check", {"customer_id": "batch_a", "feature_id": "messages"}, "am_sk_test_x")
    assert status == 401 and answer["code"] == "invalid_secret_key"
    status, answer, _ = _wsgi("balances.track", {"customer_id": "batch_a", "feature_id": "messages", "value": "1"}, key)
    assert status == 422
    status, answer, _ = _wsgi(
        "balances.batch_track",
        [{"customer_id": "batch_a", "feature_id": "messages"}, {"customer_id": "nobody", "feature_id": "messages"}],
        key,
    )
    assert status == 404 and not Event.objects.exists()  # the batch is all or nothing on either path
    body = {"customer_id": "batch_a", "feature_id": "messages", "value": 2}
    for _ in range(2):  # an Idempotency-Key: the operation, once
        assert _wsgi("balances.track", body, key, IDEMPOTENCY_KEY="once")[0] == 200
    assert Event.objects.get().value == 2
