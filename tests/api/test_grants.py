"""Grants outside the plan over the API: balances.create with an expiry and a first reset, balances.delete and
balances.list, each answering Autumn's shapes, and refusing bad input with Autumn's error, changing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Balance, Event
from customers.models import AuditEntry


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def _create(api, **body):
    return api.post("balances.create", {"customer_id": "acme_corp", "feature_id": "messages", **body})


def test_an_expiring_grant_is_drawn_first_then_gone_once_expired_and_listed_as_expired(api, customer):
    expires = timezone.now() + timedelta(days=2)
    assert _create(api, included_grant=40, expires_at=_ms(expires), balance_id="promo").json() == {"success": True}
    track = api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 50}).json()
    assert (track["balance"]["granted"], track["balance"]["remaining"]) == (140, 90)
    breakdown = {b["id"]: b for b in track["balance"]["breakdown"]}
    assert (breakdown["promo"]["remaining"], breakdown["promo"]["expires_at"]) == (0, _ms(expires))

    Balance.objects.filter(api_id="promo").update(expires_at=timezone.now() - timedelta(seconds=1))
    check = api.post("balances.check", {"customer_id": "acme_corp", "feature_id": "messages"}).json()
    assert (check["balance"]["granted"], check["balance"]["remaining"]) == (100, 90)
    assert [b["id"] for b in check["balance"]["breakdown"]] != ["promo"] and len(check["balance"]["breakdown"]) == 1
    active = api.post("balances.list", {"customer_id": "acme_corp"}).json()
    assert [(b["feature_id"], b["plan_id"], b["status"]) for b in active["list"]] == [("messages", "free", "active")]
    expired = api.post("balances.list", {"customer_id": "acme_corp", "statuses": ["expired"]}).json()["list"]
    assert [(b["id"], b["plan_id"], b["usage"], b["status"]) for b in expired] == [("promo", None, 40, "expired")]
    assert Event.objects.get(customer=customer).value == 50  # its history stays


def test_a_resetting_grant_starts_at_the_next_reset_given(api, customer):
    first = timezone.now() + timedelta(days=3)
    _create(api, included_grant=25, reset={"interval": "week"}, next_reset_at=_ms(first))
    (row,) = api.post("balances.list", {"customer_id": "acme_corp", "plan_id": None}).json()["list"]
    assert (row["reset"]["interval"], row["reset"]["resets_at"], row["included_grant"]) == ("week", _ms(first), 25)
    assert (row["customer_id"], row["entity_id"], row["rollovers"], row["source"]) == (
        "acme_corp",
        None,
        [],
        "customer",
    )


def test_list_filters_by_plan_feature_and_customer_and_pages(api, customer, other_customer):
    _create(api, included_grant=5)
    _create(api, included_grant=6, feature_id="seats")
    api.post("balances.create", {"customer_id": "globex", "feature_id": "messages", "included_grant": 7})
    everyone = api.post("balances.list", {}).json()["list"]
    assert {(b["customer_id"], b["plan_id"], b["included_grant"]) for b in everyone} == {
        ("acme_corp", "free", 100),
        ("acme_corp", None, 5),
        ("acme_corp", None, 6),
        ("globex", "free", 100),
        ("globex", None, 7),
    }
    plan = api.post("balances.list", {"customer_id": "acme_corp", "plan_id": "free"}).json()["list"]
    assert [b["included_grant"] for b in plan] == [100]
    seats = api.post("balances.list", {"customer_id": "acme_corp", "feature_id": "seats"}).json()["list"]
    assert [b["included_grant"] for b in seats] == [6]
    first = api.post("balances.list", {"limit": 2}).json()
    rest = api.post("balances.list", {"limit": 200, "start_cursor": first["next_cursor"]}).json()
    assert first["has_more"] and not rest["has_more"] and rest["next_cursor"] is None
    assert len(first["list"]) + len(rest["list"]) == 5


def test_delete_removes_the_grant_keeps_its_events_and_is_audited(api, customer, sandbox_key):
    _create(api, included_grant=30)
    api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 110})
    # The plan's balance and the grant are both of messages: the grant is the one deletable.
    response = api.post("balances.delete", {"customer_id": "acme_corp", "feature_id": "messages"})
    assert response.json() == {"success": True}
    balances = api.post("customers.get", {"customer_id": "acme_corp"}).json()["balances"]["messages"]
    assert (balances["granted"], len(balances["breakdown"])) == (100, 1)
    assert Event.objects.get(customer=customer).value == 110
    entry = AuditEntry.objects.get(action="balance.delete")
    assert (entry.actor_api_key, entry.reason, entry.before["remaining"]) == (
        sandbox_key[0],
        "Deleted through the API",
        20,
    )


def test_delete_by_balance_id_and_the_plans_balance_is_refused(api, customer):
    _create(api, included_grant=1, balance_id="gift_1")
    _create(api, included_grant=2, balance_id="gift_2")
    several = api.post("balances.delete", {"customer_id": "acme_corp", "feature_id": "messages"})
    assert (several.status_code, several.json()["code"]) == (409, "multiple_balances")
    assert api.post("balances.delete", {"customer_id": "acme_corp", "balance_id": "gift_2"}).status_code == 200
    assert list(
        Balance.objects.filter(customer=customer, api_id__startswith="gift").values_list("api_id", flat=True)
    ) == ["gift_1"]
    plan_id = f"bal_{Balance.objects.get(customer=customer, customer_product__isnull=False).pk}"
    refused = api.post("balances.delete", {"customer_id": "acme_corp", "balance_id": plan_id})
    assert (refused.status_code, refused.json()["code"]) == (400, "balance_of_a_plan")
    assert Balance.objects.filter(customer=customer).count() == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("balances.create", {"included_grant": 5, "expires_at": 1000}, 400, "invalid_inputs"),
        ("balances.create", {"included_grant": 5, "next_reset_at": 4102444800000}, 400, "invalid_inputs"),
        ("balances.create", {"included_grant": 5, "rollover": {"length": 1}}, 422, "not_supported"),
        ("balances.create", {"included_grant": 5, "entity_id": "team_1"}, 422, "not_supported"),
        ("balances.create", {"included_grant": 5, "balance_id": "taken"}, 409, "balance_exists"),
        ("balances.create", {"included_grant": 5, "customer_id": "nobody"}, 404, "customer_not_found"),
        ("balances.delete", {"balance_id": "nothing_here"}, 404, "balance_not_found"),
        ("balances.delete", {"feature_id": None}, 422, "invalid_inputs"),
        ("balances.delete", {"balance_id": "taken", "recalculate_balances": True}, 422, "not_supported"),
        ("balances.list", {"start_cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ("balances.list", {"limit": 201}, 422, "invalid_inputs"),
    ],
)
def test_bad_requests_answer_autumns_error_and_change_nothing(api, customer, path, body, status, code):
    _create(api, included_grant=3, balance_id="taken")
    before = (Balance.all_objects.count(), AuditEntry.objects.count())
    response = api.post(path, {"customer_id": "acme_corp", "feature_id": "messages", **body})
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert set(response.json()) == {"message", "code", "env"}
    assert (Balance.all_objects.count(), AuditEntry.objects.count()) == before


def test_another_environments_grants_are_neither_listed_nor_deleted(api, live_api, customer, globex):
    live_api.post("balances.create", {"customer_id": "globex", "feature_id": "messages", "included_grant": 9})
    assert {b["customer_id"] for b in api.post("balances.list", {}).json()["list"]} == {"acme_corp"}
    refused = api.post("balances.delete", {"customer_id": "globex", "feature_id": "messages"})
    assert (refused.status_code, refused.json()["code"]) == (404, "customer_not_found")
    assert Balance.objects.filter(customer=globex, customer_product__isnull=True).count() == 1
