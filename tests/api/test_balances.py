"""Check, track and balance edits over the API: the balance engine's rules, seen from a client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import Balance, Event
from billing.services.products import product_attach
from customers.models import AuditEntry


def messages_balance(customer):
    return Balance.objects.get(customer=customer, feature__feature_id="messages")


def test_track_deducts_and_records_the_event_with_its_properties_and_time(api, customer, sandbox_key):
    response = api.post(
        "balances.track",
        {
            "customer_id": "acme_corp",
            "feature_id": "messages",
            "value": 2.5,
            "properties": {"model": "fast"},
            "timestamp": 1767225600000,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"customer_id", "value", "balance"}  # no event_name when tracked by feature_id
    assert (body["customer_id"], body["value"]) == ("acme_corp", 2.5)
    assert (body["balance"]["remaining"], body["balance"]["usage"]) == (97.5, 2.5)
    event = Event.objects.get(customer=customer)
    assert (event.value, event.properties, event.api_key) == (Decimal("2.5"), {"model": "fast"}, sandbox_key[0])
    assert event.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert messages_balance(customer).remaining == Decimal("97.5")


def test_track_by_event_name_finds_the_feature(api, customer):
    body = api.post("balances.track", {"customer_id": "acme_corp", "event_name": "message_sent"}).json()
    assert (body["event_name"], body["value"], body["balance"]["feature_id"]) == ("message_sent", 1, "messages")
    assert Event.objects.get(customer=customer).event_name == "message_sent"


def test_track_beyond_the_balance_without_overage_stops_at_zero_but_records_the_full_value(api, customer):
    body = api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 130}).json()
    assert (body["balance"]["remaining"], body["balance"]["usage"]) == (0, 100)
    assert Event.objects.get(customer=customer).value == 130


def test_check_allows_what_the_balance_covers(api, customer):
    api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 90})
    allowed = api.post(
        "balances.check", {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": 10}
    ).json()
    assert (allowed["allowed"], allowed["required_balance"], allowed["flag"]) == (True, 10, None)
    assert allowed["balance"]["remaining"] == 10
    refused = api.post(
        "balances.check", {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": 11}
    ).json()
    assert refused["allowed"] is False


def test_check_of_a_boolean_feature_answers_with_a_flag(api, customer, catalogue):
    no = api.post("balances.check", {"customer_id": "acme_corp", "feature_id": "sso"}).json()
    assert (no["allowed"], no["balance"], no["flag"]) == (False, None, None)
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    yes = api.post("balances.check", {"customer_id": "acme_corp", "feature_id": "sso"}).json()
    assert (yes["allowed"], yes["balance"]) == (True, None)
    assert (yes["flag"]["feature_id"], yes["flag"]["plan_id"]) == ("sso", "pro")


def test_check_with_send_event_tracks_what_it_allowed(api, customer):
    body = api.post(
        "balances.check",
        {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": 4, "send_event": True},
    ).json()
    assert body["allowed"] is True and body["balance"]["remaining"] == 96
    assert Event.objects.get(customer=customer).value == 4
    refused = api.post(
        "balances.check",
        {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": 500, "send_event": True},
    ).json()
    assert refused["allowed"] is False
    assert Event.objects.filter(customer=customer).count() == 1


def test_update_sets_the_new_balance_by_the_dashboard_rule(api, customer, sandbox_key):
    api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 30})
    response = api.post(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages", "remaining": 500, "reason": "Outage credit"},
    )
    assert response.json() == {"success": True}
    balance = messages_balance(customer)
    assert (balance.remaining, balance.granted, balance.usage) == (500, 530, 30)
    entry = AuditEntry.objects.get(action="balance.set")
    assert (entry.actor_api_key, entry.reason) == (sandbox_key[0], "Outage credit")
    assert (entry.before["remaining"], entry.after["remaining"]) == (70, 500)


def test_update_adds_to_the_balance_and_moves_the_next_reset(api, customer):
    new_reset = timezone.now().replace(microsecond=0) + timedelta(days=3)
    api.post(
        "balances.update",
        {
            "customer_id": "acme_corp",
            "feature_id": "messages",
            "add_to_balance": -25,
            "next_reset_at": int(new_reset.timestamp() * 1000),
        },
    )
    balance = messages_balance(customer)
    assert (balance.remaining, balance.granted, balance.usage) == (75, 75, 0)
    assert balance.next_reset_at == new_reset
    assert AuditEntry.objects.get(action="balance.add").reason == "Changed through the API"


def test_update_with_several_balances_of_a_feature_needs_a_balance_id(api, customer, catalogue):
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    product_attach(customer=customer, product=catalogue["seats_addon"], actor=None)
    ambiguous = api.post("balances.update", {"customer_id": "acme_corp", "feature_id": "seats", "remaining": 15})
    assert ambiguous.status_code == 409 and ambiguous.json()["code"] == "multiple_balances"
    addon = Balance.objects.get(
        customer=customer, feature=catalogue["seats"], customer_product__product__is_add_on=True
    )
    response = api.post(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "seats", "remaining": 15, "balance_id": f"bal_{addon.pk}"},
    )
    assert response.status_code == 200
    addon.refresh_from_db()
    assert addon.remaining == 15


def test_create_grants_a_feature_outside_any_plan(api, customer, catalogue):
    response = api.post(
        "balances.create",
        {"customer_id": "acme_corp", "feature_id": "api_calls", "included_grant": 250, "reset": {"interval": "month"}},
    )
    assert response.json() == {"success": True}
    api_calls = api.post("customers.get", {"customer_id": "acme_corp"}).json()["balances"]["api_calls"]
    assert (api_calls["granted"], api_calls["remaining"]) == (250, 250)
    assert api_calls["breakdown"][0]["plan_id"] is None
    assert api_calls["breakdown"][0]["reset"]["interval"] == "month"
    assert AuditEntry.objects.get(action="balance.create").reason == "Granted through the API"


def test_create_an_unlimited_lifetime_grant(api, customer):
    api.post("balances.create", {"customer_id": "acme_corp", "feature_id": "api_calls", "unlimited": True})
    check = api.post(
        "balances.check", {"customer_id": "acme_corp", "feature_id": "api_calls", "required_balance": 10**9}
    ).json()
    assert check["allowed"] is True
    assert (check["balance"]["unlimited"], check["balance"]["next_reset_at"]) == (True, None)
