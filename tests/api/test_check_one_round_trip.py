"""/v1/balances.check runs every check through the one engine. The common check takes the lean path
(autumn_admin/api/hot.py): one load statement that also finds the key, the customer and the feature; an
Idempotency-Key takes the ninja operation. Both give the same answer."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Balance, CreditCost, Event, Feature
from billing.services.balances import balance_create
from billing.services.products import product_attach
from customers.models import ApiKey, AuditEntry
from customers.services.api_keys import api_key_revoke
from customers.services.customers import customer_create, customer_delete

_KEYS = itertools.count()

# What a common check costs on the lean path: the engine's one load (key, customer, feature, balances).
CHECK_QUERIES = 1


def _check(api, body, *, general=False):
    # An Idempotency-Key always takes the general operation.
    headers = {"Idempotency-Key": f"general-{next(_KEYS)}"} if general else None
    with CaptureQueriesContext(connection) as ctx:
        response = api.post("balances.check", body, headers=headers)
    return response, len(ctx.captured_queries)


@pytest.fixture
def scaled(catalogue, ops):
    """A customer on Scale (api_calls: overage and a usage price; messages: no overage) and one on Pro
    (seats: lifetime; sso: on/off)."""
    now = timezone.now()
    on_scale = customer_create(env="sandbox", customer_id="on_scale", actor=ops)
    product_attach(customer=on_scale, product=catalogue["scale"], actor=ops, now=now)
    on_pro = customer_create(env="sandbox", customer_id="on_pro", actor=ops)
    product_attach(customer=on_pro, product=catalogue["pro"], actor=ops, now=now)
    return on_scale, on_pro


CASES = [
    ("on_scale", "api_calls", {}),  # overage allowed, a usage price
    ("on_scale", "api_calls", {"required_balance": 10**9}),  # overage: allowed beyond the balance
    ("on_scale", "messages", {}),
    ("on_scale", "messages", {"required_balance": 20_000}),  # exactly what remains
    ("on_scale", "messages", {"required_balance": 20_000.5}),  # not covered
    ("on_scale", "messages", {"required_balance": 0}),
    ("on_scale", "messages", {"required_balance": 2.25, "send_event": False, "properties": {"a": 1}}),
    ("on_pro", "seats", {"required_balance": 10}),  # lifetime: no reset
    ("on_pro", "seats", {"required_balance": 11}),
    ("on_pro", "sso", {}),  # boolean: a flag
    ("on_pro", "messages", {"ignored_key": True}),
]


@pytest.mark.parametrize(("customer_id", "feature_id", "extra"), CASES)
def test_a_check_answers_the_same_with_or_without_an_idempotency_key(api, scaled, customer_id, feature_id, extra):
    body = {"customer_id": customer_id, "feature_id": feature_id, **extra}
    fast, queries = _check(api, body)
    general, general_queries = _check(api, body, general=True)
    assert fast.status_code == general.status_code == 200
    assert queries == CHECK_QUERIES and general_queries > CHECK_QUERIES
    assert fast.json() == general.json()
    assert fast["Content-Type"] == general["Content-Type"]


def test_an_overdrawn_balance_and_a_usage_limit_answer_like_the_operation(api, scaled, catalogue, ops):
    on_scale, _ = scaled
    # 100,050 used of 100,000 (overage), at most 100,100: 50 more may be used, not 51.
    balance = Balance.objects.get(customer=on_scale, feature=catalogue["api_calls"])
    Balance.objects.filter(pk=balance.pk).update(remaining=Decimal(-50), usage_limit=Decimal(100_100))
    for required in (1, 50, 51, 10**6):
        body = {"customer_id": "on_scale", "feature_id": "api_calls", "required_balance": required}
        fast, queries = _check(api, body)
        general, _ = _check(api, body, general=True)
        assert queries == CHECK_QUERIES
        assert fast.json() == general.json(), required
    assert _check(api, {"customer_id": "on_scale", "feature_id": "api_calls", "required_balance": 50})[0].json()[
        "allowed"
    ]
    assert not _check(api, {"customer_id": "on_scale", "feature_id": "api_calls", "required_balance": 51})[0].json()[
        "allowed"
    ]


def test_a_check_notes_the_keys_use_once_a_minute_and_writes_nothing_else(api, scaled, sandbox_key):
    key, _ = sandbox_key
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=None)
    audit_before = AuditEntry.objects.count()
    body = {"customer_id": "on_scale", "feature_id": "messages"}
    assert _check(api, body)[1] == CHECK_QUERIES
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    _check(api, body)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    _check(api, body)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first
    assert not Event.objects.exists() and AuditEntry.objects.count() == audit_before


def _general(api, body, *, status=200):
    """The answer of a request (an error is the operation's: more than the one load)."""
    response, queries = _check(api, body)
    assert response.status_code == status, response.content
    assert queries > 1 if status != 200 else queries >= 1
    return response.json()


def test_errors_resets_and_several_balances_are_answered_by_the_engine(api, live_api, scaled, catalogue, ops):
    on_scale, on_pro = scaled
    body = {"customer_id": "on_scale", "feature_id": "messages"}
    assert _general(api, {**body, "customer_id": "nobody"}, status=404)["code"] == "customer_not_found"
    assert _general(api, {**body, "feature_id": "nope"}, status=404)["code"] == "feature_not_found"
    assert _general(live_api, body, status=404)["code"] == "customer_not_found"  # the other environment's key
    assert _check(api, {**body, "required_balance": "1"})[0].status_code == 422
    # No balance of the feature: not allowed, nothing to show.
    assert _general(api, {**body, "feature_id": "seats"}) == {
        "allowed": False,
        "customer_id": "on_scale",
        "entity_id": None,
        "required_balance": 1,
        "balance": None,
        "flag": None,
        "balances": {},
    }
    # send_event: a check that tracks.
    answer = _general(api, {**body, "send_event": True, "required_balance": 3})
    assert answer["allowed"] and answer["balance"]["usage"] == 3
    assert Event.objects.filter(customer=on_scale).count() == 1

    # Several balances of one feature.
    balance_create(customer=on_scale, feature=catalogue["messages"], actor=ops, granted=10, reason="Goodwill")
    answer = _general(api, body)
    assert len(answer["balance"]["breakdown"]) == 2 and answer["balance"]["granted"] == 20_010

    # A due reset anywhere among the customer's balances: reset first, and recorded.
    seats = Balance.objects.get(customer=on_pro, feature=catalogue["messages"])
    Balance.objects.filter(pk=seats.pk).update(next_reset_at=timezone.now() - timedelta(minutes=1), remaining=0)
    answer = _general(api, {"customer_id": "on_pro", "feature_id": "sso"})
    assert answer["allowed"] and answer["flag"]["feature_id"] == "sso"
    assert Balance.objects.get(pk=seats.pk).remaining == 5000
    assert AuditEntry.objects.filter(action="balance.reset", target_id=str(seats.pk)).exists()

    customer_delete(customer=on_pro, actor=ops)
    assert _general(api, {"customer_id": "on_pro", "feature_id": "sso"}, status=404)["code"] == "customer_not_found"


def test_a_feature_a_credit_system_counts_is_checked_by_the_same_engine(api, scaled, catalogue):
    credits = Feature.objects.create(feature_id="credits", name="Credits", type="credit_system")
    CreditCost.objects.create(credit_system=credits, metered_feature=catalogue["messages"], credit_cost=Decimal(2))
    fast = _general(api, {"customer_id": "on_scale", "feature_id": "messages"})
    assert fast["allowed"]
    assert _check(api, {"customer_id": "on_scale", "feature_id": "messages"})[1] == CHECK_QUERIES  # pools too


def test_a_revoked_key_is_refused(api, scaled, sandbox_key, ops):
    key, _ = sandbox_key
    api_key_revoke(api_key=key, actor=ops)
    response, _ = _check(api, {"customer_id": "on_scale", "feature_id": "messages"})
    assert response.status_code == 401 and "revoked" in response.json()["message"]
