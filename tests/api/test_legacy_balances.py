"""The 1.2 forms /v1/check, /v1/track, /v1/usage and /v1/entitled: the 2.x services, the 1.2 answers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Balance, Event
from billing.services.products import product_attach
from customers.models import AuditEntry


def messages_balance(customer):
    return Balance.objects.get(customer=customer, feature__feature_id="messages")


def test_legacy_check_answers_in_the_1_2_keys(api, customer):
    body = api.post("check", {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": 5}).json()
    assert body == {
        "allowed": True,
        "code": "feature_found",
        "customer_id": "acme_corp",
        "feature_id": "messages",
        "entity_id": None,
        "required_balance": 5,
        "interval": "month",
        "interval_count": 1,
        "unlimited": False,
        "balance": 100,
        "usage": 0,
        "included_usage": 100,
        "next_reset_at": body["next_reset_at"],
        "overage_allowed": False,
        "breakdown": None,
        "usage_limit": None,
    }
    assert body["next_reset_at"] > 0
    assert not Event.objects.exists()


def test_legacy_check_refuses_more_than_the_balance_and_sends_an_event_only_when_allowed(api, customer):
    refused = api.post("check", {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": 101})
    assert refused.json()["allowed"] is False
    sent = api.post("check", {"customer_id": "acme_corp", "feature_id": "messages", "send_event": True}).json()
    assert (sent["allowed"], sent["balance"], sent["usage"]) == (True, 99, 1)
    assert Event.objects.get(customer=customer).value == Decimal(1)


def test_legacy_check_of_a_feature_the_customer_lacks_and_of_a_flag(api, customer, catalogue):
    lacking = api.post("check", {"customer_id": "acme_corp", "feature_id": "sso"}).json()
    assert (lacking["allowed"], lacking["balance"], lacking["interval"]) == (False, None, None)
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    flag = api.post("check", {"customer_id": "acme_corp", "feature_id": "sso", "send_event": True}).json()
    assert (flag["allowed"], flag["balance"], flag["interval"]) == (True, None, "lifetime")
    assert not Event.objects.exists()


def test_legacy_check_lists_each_balance_when_there_are_several(api, customer):
    api.post("balances.create", {"customer_id": "acme_corp", "feature_id": "messages", "included_grant": 50})
    body = api.post("check", {"customer_id": "acme_corp", "feature_id": "messages"}).json()
    assert (body["balance"], body["interval"]) == (150, "multiple")
    assert [(b["interval"], b["balance"]) for b in body["breakdown"]] == [("month", 100), ("lifetime", 50)]


def test_legacy_track_draws_the_balance_and_answers_in_the_1_2_shape(api, customer):
    response = api.post("track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 3})
    assert response.json() == {"customer_id": "acme_corp", "feature_id": "messages"}
    by_event = api.post("track", {"customer_id": "acme_corp", "event_name": "message_sent", "properties": {"a": "b"}})
    assert by_event.json() == {"customer_id": "acme_corp", "event_name": "message_sent"}
    assert messages_balance(customer).remaining == Decimal(96)
    assert Event.objects.filter(customer=customer, properties={"a": "b"}).count() == 1


def test_legacy_track_with_an_idempotency_key_records_once(api, customer):
    body = {"customer_id": "acme_corp", "feature_id": "messages", "value": 2, "idempotency_key": "msg-1"}
    assert api.post("track", body).status_code == 200
    assert api.post("track", body).status_code == 200
    assert Event.objects.filter(customer=customer).count() == 1
    assert messages_balance(customer).remaining == Decimal(98)


def test_legacy_track_reject_tracks_nothing_beyond_the_balance(api, customer):
    before = AuditEntry.objects.count()
    response = api.post(
        "track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 101, "overage_behavior": "reject"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_balance"
    assert not Event.objects.exists()
    assert (messages_balance(customer).remaining, AuditEntry.objects.count()) == (Decimal(100), before)
    capped = api.post("track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 101})
    assert capped.status_code == 200
    assert messages_balance(customer).remaining == Decimal(0)


def test_legacy_usage_makes_the_usage_read_the_value_by_tracking_the_difference(api, customer, sandbox_key):
    api.post("track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 10})
    response = api.post("usage", {"customer_id": "acme_corp", "feature_id": "messages", "value": 25})
    assert response.json() == {"success": True}
    balance = messages_balance(customer)
    assert (balance.granted, balance.usage, balance.remaining) == (Decimal(100), Decimal(25), Decimal(75))
    added = Event.objects.filter(customer=customer).order_by("pk").last()
    assert (added.value, added.properties, added.api_key) == (Decimal(15), {"set_usage": "25"}, sandbox_key[0])
    assert api.post("usage", {"customer_id": "acme_corp", "feature_id": "messages", "value": 5}).status_code == 200
    balance = messages_balance(customer)
    assert (balance.usage, balance.remaining) == (Decimal(5), Decimal(95))
    assert list(Event.objects.filter(customer=customer).order_by("pk").values_list("value", flat=True)) == [
        Decimal(10),
        Decimal(15),
        Decimal(-20),
    ]  # recorded usage is never rewritten: each change is an event of its own
    assert api.post("usage", {"customer_id": "acme_corp", "feature_id": "messages", "value": 5}).status_code == 200
    assert Event.objects.filter(customer=customer).count() == 3  # the usage already reads 5: nothing to record


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"customer_id": "nobody", "feature_id": "messages", "value": 1}, 404, "customer_not_found"),
        ({"customer_id": "acme_corp", "feature_id": "nope", "value": 1}, 404, "feature_not_found"),
        ({"customer_id": "acme_corp", "feature_id": "seats", "value": 1}, 404, "balance_not_found"),
        ({"customer_id": "acme_corp", "feature_id": "messages", "value": 150}, 400, "overage_not_allowed"),
        ({"customer_id": "acme_corp", "feature_id": "messages", "value": None}, 422, "invalid_inputs"),
        ({"customer_id": "acme_corp", "feature_id": "messages"}, 422, "invalid_inputs"),
        ({"customer_id": "acme_corp", "feature_id": "sso", "value": 1}, 422, "invalid_inputs"),
    ],
)
def test_legacy_usage_refusals_change_nothing(api, customer, body, status, code):
    before = AuditEntry.objects.count()
    response = api.post("usage", body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert messages_balance(customer).remaining == Decimal(100)
    assert AuditEntry.objects.count() == before


def test_legacy_usage_with_several_balances_asks_for_the_2_x_edit(api, customer):
    api.post("balances.create", {"customer_id": "acme_corp", "feature_id": "messages", "included_grant": 50})
    response = api.post("usage", {"customer_id": "acme_corp", "feature_id": "messages", "value": 1})
    assert (response.status_code, response.json()["code"]) == (409, "multiple_balances")


def test_entitled_answers_allowed_and_the_balance(api, customer, catalogue):
    body = api.post("entitled", {"customer_id": "acme_corp", "feature_id": "messages", "required_quantity": 4}).json()
    assert body == {
        "allowed": True,
        "balances": [{"feature_id": "messages", "balance": 100, "required": 4, "unlimited": False}],
    }
    assert not Event.objects.exists()
    sent = api.post("entitled", {"customer_id": "acme_corp", "feature_id": "messages", "event_data": {"k": "v"}})
    assert sent.json()["balances"][0]["balance"] == 99
    assert Event.objects.get(customer=customer).properties == {"k": "v"}
    flag = api.post("entitled", {"customer_id": "acme_corp", "feature_id": "sso"}).json()
    assert flag == {
        "allowed": False,
        "balances": [{"feature_id": "sso", "balance": None, "required": None, "unlimited": False}],
    }


@pytest.mark.parametrize("path", ["check", "track", "usage", "entitled"])
def test_legacy_forms_never_reach_the_other_environment(live_api, customer, path):
    before = AuditEntry.objects.count()
    response = live_api.post(path, {"customer_id": "acme_corp", "feature_id": "messages", "value": 1})
    assert response.status_code == 404
    assert response.json() == {"message": "Customer acme_corp not found", "code": "customer_not_found", "env": "live"}
    assert (messages_balance(customer).remaining, AuditEntry.objects.count()) == (Decimal(100), before)
    assert not Event.objects.exists()


@pytest.mark.parametrize("path", ["check", "track", "entitled"])
def test_legacy_forms_refuse_explicit_nulls(api, customer, path):
    field = {"check": "required_balance", "track": "value", "entitled": "required_quantity"}[path]
    response = api.post(path, {"customer_id": "acme_corp", "feature_id": "messages", field: None})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_inputs")
    assert "may not be null" in response.json()["message"]
    assert not Event.objects.exists()
