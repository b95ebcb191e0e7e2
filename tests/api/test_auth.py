"""Secret keys: a missing, malformed, unknown or revoked key answers 401; each key sees only its environment."""

from __future__ import annotations

import pytest

from billing.models import Event, Invoice
from customers.models import ApiKey, Customer
from customers.services.api_keys import api_key_revoke
from tests.api.conftest import ApiClient


@pytest.mark.parametrize(
    ("authorization", "code", "words"),
    [
        (None, "no_secret_key", "not found in Authorization header"),
        ("", "no_secret_key", "not found in Authorization header"),
        ("Basic dXNlcjpwYXNz", "no_secret_key", "not found in Authorization header"),
        ("Bearer ", "no_secret_key", "not found in Authorization header"),
        ("Bearer am_sk_test_short", "invalid_secret_key", "Invalid secret key: am_sk_test_sho"),
        ("Bearer sk_live_51H8abcdefghijklmnopqrstuvwxyz0123456789AB", "invalid_secret_key", "Invalid secret key"),
        ("Bearer am_pk_test_" + "a" * 40, "invalid_secret_key", "Invalid secret key"),
        ("Bearer am_sk_test_" + "a" * 40, "invalid_secret_key", "Invalid secret key"),
        ("Bearer am_sk_live_" + "a" * 39 + "!", "invalid_secret_key", "Invalid secret key"),
    ],
)
def test_request_without_a_valid_key_is_refused_with_401(client, customer, authorization, code, words):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post(
        "/v1/customers.get_or_create",
        data={"customer_id": "intruder"},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == code and words in body["message"] and body["env"] is None
    assert "a" * 30 not in body["message"]  # the key is masked, not echoed
    assert not Customer.objects.filter(customer_id="intruder").exists()


def test_revoked_key_is_refused(client, customer, sandbox_key, ops):
    api_key, raw = sandbox_key
    api = ApiClient(client, raw)
    assert api.post("customers.get", {"customer_id": "acme_corp"}).status_code == 200
    api_key_revoke(api_key=api_key, actor=ops)
    response = api.post("customers.get", {"customer_id": "acme_corp"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_secret_key"
    assert "revoked" in response.json()["message"]


def test_auth_is_checked_before_the_body(anonymous_api):
    response = anonymous_api.post("customers.get", raw="{not json", content_type="application/json")
    assert response.status_code == 401


def test_using_a_key_records_when_it_was_last_used(api, sandbox_key, customer):
    api_key, _ = sandbox_key
    assert api_key.last_used_at is None
    api.post("customers.get", {"customer_id": "acme_corp"})
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_sandbox_key_does_not_see_live_customers_and_live_key_does_not_see_sandbox(api, live_api, customer):
    assert live_api.post("customers.get", {"customer_id": "acme_corp"}).status_code == 404
    assert live_api.get("customers/acme_corp").status_code == 404
    assert live_api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages"}).status_code == 404
    assert live_api.post("customers.update", {"customer_id": "acme_corp", "name": "Hijacked"}).status_code == 404
    assert live_api.post("customers.delete", {"customer_id": "acme_corp"}).status_code == 404
    customer.refresh_from_db()
    assert (customer.name, customer.deleted_at) == ("Acme Corp", None)
    assert Event.objects.count() == 0

    # The same id in live is another customer altogether.
    live = live_api.post("customers.get_or_create", {"customer_id": "acme_corp", "name": "Acme Live"}).json()
    assert (live["env"], live["name"]) == ("live", "Acme Live")
    assert api.post("customers.get", {"customer_id": "acme_corp"}).json()["name"] == "Acme Corp"
    assert Customer.objects.filter(customer_id="acme_corp").count() == 2

    live_api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 7})
    assert [c["id"] for c in api.post("customers.list").json()["list"]] == ["acme_corp"]
    assert [c["env"] for c in live_api.post("customers.list").json()["list"]] == ["live"]
    assert api.post("events.list").json()["list"] == []
    assert [e["value"] for e in live_api.post("events.list").json()["list"]] == [7]
    assert api.post("customers.get", {"customer_id": "acme_corp"}).json()["balances"]["messages"]["remaining"] == 100


def test_invoices_of_the_other_environment_are_not_listed(api, live_api, customer):
    Invoice.objects.create(customer=customer, stripe_id="in_sandbox", status="paid", total=9900)
    assert [i["stripe_id"] for i in api.post("invoices.list").json()["list"]] == ["in_sandbox"]
    assert live_api.post("invoices.list").json()["list"] == []
    assert live_api.post("invoices.list", {"customer_id": "acme_corp"}).status_code == 404


def test_error_bodies_name_the_environment_of_the_key(live_api):
    assert live_api.post("customers.get", {"customer_id": "nobody"}).json()["env"] == "live"


def test_only_a_hash_of_the_key_is_stored(sandbox_key):
    api_key, raw = sandbox_key
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert raw not in [str(v) for v in stored.values()]
    assert raw.startswith(stored["prefix"]) and len(stored["prefix"]) == len("am_sk_test_") + 4
