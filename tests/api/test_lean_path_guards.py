"""The lean path in front of Django (autumn_admin/wsgi.py) keeps Django's guards: a body over the limit is
refused before any of it is read, HTTPS and the allowed hosts are required as for any URL, an answer that
fails after its track committed is Autumn's 500 and never a second track, and two batches over the same
balances in opposite orders never deadlock."""

from __future__ import annotations

import io
import json
import threading
from decimal import Decimal

import pytest
from django.core import signals
from django.db import close_old_connections, connection

from autumn_admin import wsgi
from autumn_admin.api import hot
from autumn_admin.wsgi import application
from billing.models import Balance, Event
from customers.models import ApiKey
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from tests.conftest import ensure_roles


@pytest.fixture(autouse=True)
def _requests_keep_the_tests_connection(request):
    """As Django's test client does: a request's start and end don't close the test's connection (not for
    the threaded test, whose threads have connections of their own)."""
    if "transactional_db" in request.fixturenames:
        yield
        return
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


class _Input(io.BytesIO):
    """A request body that counts what was read of it."""

    def read(self, size=-1):
        data = super().read(size)
        self.taken = getattr(self, "taken", 0) + len(data)
        return data


def _call(path, body, key, *, scheme="http", length=None, **environ_extra):
    raw = json.dumps(body).encode()
    stream = _Input(raw)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/v1/{path}",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": scheme,
        "wsgi.input": stream,
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw) if length is None else length),
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        **environ_extra,
    }
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"] = int(status.split()[0])
        started["headers"] = dict(headers)

    payload = b"".join(application(environ, start_response))
    return started["status"], payload, started["headers"], stream


@pytest.fixture
def acme(catalogue, ops):
    return customer_create(env="sandbox", customer_id="lean_acme", actor=ops)


def _remaining(customer):
    return Balance.objects.get(customer=customer, feature__feature_id="messages").remaining


TRACK = {"customer_id": "lean_acme", "feature_id": "messages", "value": 5}


def test_a_body_over_the_limit_is_refused_before_any_of_it_is_read(sandbox_key, acme, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    status, _, _, stream = _call("balances.track", TRACK, sandbox_key[1], length=50_000_000)
    assert status >= 400 and getattr(stream, "taken", 0) == 0
    status, _, _, stream = _call("balances.track", TRACK, sandbox_key[1], length=-1)
    assert status >= 400 and getattr(stream, "taken", 0) == 0
    assert _remaining(acme) == 100 and not Event.objects.exists()


def test_where_https_is_required_a_plain_http_track_is_left_to_django_which_redirects_it(sandbox_key, acme, settings):
    # Django's SecurityMiddleware reads SECURE_SSL_REDIRECT once, when the application is built: here the
    # lean path's own rule is what changes with the setting, and Django's redirect is its tested default.
    settings.SECURE_SSL_REDIRECT = True
    plain = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/balances.track", "SERVER_NAME": "testserver"}
    assert not wsgi._lean_may_answer({**plain, "wsgi.url_scheme": "http"})
    assert not wsgi._lean_may_answer({**plain, "wsgi.url_scheme": "http", "HTTP_X_FORWARDED_PROTO": "http"})
    assert wsgi._lean_may_answer({**plain, "wsgi.url_scheme": "https"})
    status, _, headers, _ = _call("balances.track", TRACK, sandbox_key[1], scheme="https")
    assert status == 200 and _remaining(acme) == 95
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "same-origin"


def test_a_track_to_a_host_not_allowed_is_refused_and_records_nothing(sandbox_key, acme):
    status, _, _, _ = _call("balances.track", TRACK, sandbox_key[1], HTTP_HOST="evil.example")
    assert status == 400
    assert _remaining(acme) == 100 and not Event.objects.exists()


def test_an_answer_failing_after_its_track_committed_is_a_json_500_and_the_track_is_recorded_once(
    sandbox_key, acme, monkeypatch
):
    def fails_after_the_commit(*args, **kwargs):  # the answer's JSON, or the COMMIT's reply, lost
        raise RuntimeError("the answer could not be built")

    monkeypatch.setattr(hot, "track_json", fails_after_the_commit)
    status, payload, _, _ = _call("balances.track", TRACK, sandbox_key[1])
    assert status == 500
    assert json.loads(payload) == {
        "message": "Something went wrong on our side. Try again later.",
        "code": "internal_error",
        "env": "sandbox",
    }
    assert _remaining(acme) == 95 and Event.objects.filter(customer=acme).count() == 1


@pytest.mark.django_db(transaction=True)
def test_batches_in_opposite_orders_and_a_track_by_the_same_key_never_deadlock(transactional_db, catalogue, ops):
    ensure_roles()  # transactional tests flush the roles
    key = api_key_create(env="sandbox", name="Batches", actor=ops)[1]
    a = customer_create(env="sandbox", customer_id="dl_a", actor=ops)
    b = customer_create(env="sandbox", customer_id="dl_b", actor=ops)
    forward = [{"customer_id": cid, "feature_id": "messages"} for cid in ("dl_a", "dl_b", "dl_a", "dl_b", "dl_a")]
    rounds, answers = 12, []  # within the 100 messages granted: a uses 6 a round, b 5
    barrier = threading.Barrier(3)

    def send(path, body):
        try:
            barrier.wait()
            answers.append(_call(path, body, key)[0])
        finally:
            connection.close()

    for _ in range(rounds):
        ApiKey.objects.update(last_used_at=None)  # each request notes the key's use again (once a minute)
        # Two batches in opposite orders, and a single track by the same key (which notes the key's use)
        requests = [
            ("balances.batch_track", forward),
            ("balances.batch_track", forward[::-1]),
            ("balances.track", {"customer_id": "dl_b", "feature_id": "messages"}),
        ]
        threads = [threading.Thread(target=send, args=r) for r in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert answers == [200] * (3 * rounds)
    assert (_remaining(a), _remaining(b)) == (Decimal(100 - 6 * rounds), Decimal(100 - 5 * rounds))
