"""/v1/balances.track runs every track through the one engine. The common track takes the lean path
(autumn_admin/api/hot.py): one load statement that also finds the key, the customer and the feature, one
store statement; an Idempotency-Key takes the ninja operation. Both give the same answer."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Balance, DailyUsage, Event
from billing.services.balances import balance_create
from billing.services.products import product_attach
from customers.models import ApiKey
from customers.services.api_keys import api_key_revoke
from customers.services.customers import customer_create, customer_delete

_KEYS = itertools.count()

# What a common track costs on the lean path: the load, the store, in a savepoint (the test's transaction).
TRACK_QUERIES = 4


def _track(api, body, *, general=False):
    # An Idempotency-Key always takes the general operation.
    headers = {"Idempotency-Key": f"general-{next(_KEYS)}"} if general else None
    with CaptureQueriesContext(connection) as ctx:
        response = api.post("balances.track", body, headers=headers)
    return response, len(ctx.captured_queries)


@pytest.fixture
def twins(catalogue, ops):
    """Two customers on Scale (a usage price on api_calls), one for each way."""
    out, now = [], timezone.now()
    for cid in ("twin_a", "twin_b"):
        customer = customer_create(env="sandbox", customer_id=cid, actor=ops)
        product_attach(customer=customer, product=catalogue["scale"], actor=ops, now=now)
        out.append(customer)
    return out


@pytest.mark.parametrize(
    "body",
    [
        {"feature_id": "api_calls"},
        {"feature_id": "api_calls", "value": 250_000.5, "properties": {"endpoint": "/chat", "n": [1, 2]}},
        {"feature_id": "api_calls", "value": -3},
        {"feature_id": "messages", "value": 7, "ignored_key": True},
    ],
)
def test_a_track_answers_the_same_with_or_without_an_idempotency_key(api, twins, body):
    # 10 used on each twin, so the refund has usage to give back (a larger one takes the general path).
    Balance.objects.filter(customer__in=twins, feature__feature_id="api_calls").update(remaining=F("remaining") - 10)
    fast, queries = _track(api, {"customer_id": "twin_a", **body})
    general, general_queries = _track(api, {"customer_id": "twin_b", **body}, general=True)
    assert fast.status_code == general.status_code == 200
    assert queries == TRACK_QUERIES and general_queries > TRACK_QUERIES
    answer, expected = fast.json(), general.json()
    expected["customer_id"] = "twin_a"
    for b in expected["balance"]["breakdown"]:
        b["id"] = answer["balance"]["breakdown"][0]["id"]
    assert answer == expected
    balance = Balance.objects.get(customer=twins[0], feature__feature_id=body["feature_id"])
    assert answer["balance"]["breakdown"][0]["id"] == f"bal_{balance.pk}"


def test_what_a_track_stores(api, twins, sandbox_key):
    key, _ = sandbox_key
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=None)
    response, _ = _track(
        api, {"customer_id": "twin_a", "feature_id": "api_calls", "value": 12, "properties": {"model": "large"}}
    )
    assert response.status_code == 200
    event = Event.objects.get(customer=twins[0])
    assert (event.feature.feature_id, event.value, event.properties, event.api_key_id, event.event_name) == (
        "api_calls",
        Decimal(12),
        {"model": "large"},
        key.pk,
        "",
    )
    balance = Balance.objects.get(customer=twins[0], feature__feature_id="api_calls")
    assert balance.remaining == 100_000 - 12
    assert DailyUsage.objects.get(customer=twins[0]).value == 12
    # The key's last use is noted, then not again within the minute.
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    _track(api, {"customer_id": "twin_a", "feature_id": "api_calls"})
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    _track(api, {"customer_id": "twin_a", "feature_id": "api_calls"})
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_refused_tracks_change_nothing_and_resets_and_several_balances_are_drawn(
    api, live_api, twins, catalogue, ops, sandbox_key
):
    body = {"customer_id": "twin_a", "feature_id": "api_calls", "value": 1}
    assert _track(api, {**body, "customer_id": "nobody"})[0].json()["code"] == "customer_not_found"
    assert _track(api, {**body, "feature_id": "nope"})[0].json()["code"] == "feature_not_found"
    assert _track(live_api, body)[0].status_code == 404  # the other environment's key
    assert _track(api, {**body, "value": "1"})[0].status_code == 422
    assert _track(api, {**body, "value": True})[0].status_code == 422
    assert _track(api, {**body, "value": 10**16})[0].status_code == 422
    assert _track(api, {**body, "feature_id": "sso"})[0].status_code == 400  # on/off: nothing to track
    customer_delete(customer=twins[1], actor=ops)
    assert _track(api, {**body, "customer_id": "twin_b"})[0].status_code == 404
    assert not Event.objects.exists() and not DailyUsage.objects.exists()

    # A due reset, and several balances of one feature: the general way, one event each.
    balance = Balance.objects.get(customer=twins[0], feature=catalogue["api_calls"])
    Balance.objects.filter(pk=balance.pk).update(next_reset_at=timezone.now() - timedelta(minutes=1), remaining=5)
    response, queries = _track(api, body)
    assert response.status_code == 200 and queries == TRACK_QUERIES + 1  # and the reset's audit entry
    assert Balance.objects.get(pk=balance.pk).remaining == 100_000 - 1
    balance_create(customer=twins[0], feature=catalogue["api_calls"], actor=ops, granted=10, reason="Goodwill")
    response, queries = _track(api, {**body, "value": 4})
    assert response.status_code == 200 and queries == TRACK_QUERIES
    assert len(response.json()["balance"]["breakdown"]) == 2
    assert Event.objects.filter(customer=twins[0]).count() == 2

    key, _ = sandbox_key
    api_key_revoke(api_key=key, actor=ops)
    response, _ = _track(api, body)
    assert response.status_code == 401 and "revoked" in response.json()["message"]
    assert Event.objects.filter(customer=twins[0]).count() == 2
