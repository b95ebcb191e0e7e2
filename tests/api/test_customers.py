"""Customers over the API: the shapes Autumn's clients require, and the behaviour behind them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Balance, CustomerProduct, Reward
from billing.services.products import product_attach
from billing.services.rewards import reward_apply
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_restore

CUSTOMER_KEYS = {
    "id",
    "name",
    "email",
    "created_at",
    "fingerprint",
    "stripe_id",
    "env",
    "metadata",
    "send_email_receipts",
    "billing_controls",
    "subscriptions",
    "purchases",
    "licenses",
    "balances",
    "flags",
}
BALANCE_KEYS = {
    "feature_id",
    "granted",
    "remaining",
    "usage",
    "unlimited",
    "overage_allowed",
    "max_purchase",
    "next_reset_at",
}
SUBSCRIPTION_KEYS = {
    "id",
    "plan_id",
    "auto_enable",
    "add_on",
    "status",
    "past_due",
    "canceled_at",
    "expires_at",
    "trial_ends_at",
    "started_at",
    "current_period_start",
    "current_period_end",
    "quantity",
}


def test_get_or_create_creates_a_customer_on_the_default_plan_with_every_required_key(api, catalogue, sandbox_key):
    response = api.post(
        "customers.get_or_create",
        {"customer_id": "user_1", "name": "Jo", "email": "jo@x.test", "metadata": {"plan_tier": "gold"}},
    )
    assert response.status_code == 200
    body = response.json()
    assert CUSTOMER_KEYS <= set(body)
    assert "invoices" not in body and "rewards" not in body  # only when expanded
    assert (body["id"], body["name"], body["email"], body["env"]) == ("user_1", "Jo", "jo@x.test", "sandbox")
    assert (body["fingerprint"], body["stripe_id"], body["metadata"]) == (None, None, {"plan_tier": "gold"})
    customer = Customer.objects.get(customer_id="user_1")
    assert body["created_at"] == int(customer.created_at.timestamp() * 1000)
    [subscription] = body["subscriptions"]
    assert set(subscription) == SUBSCRIPTION_KEYS
    assert (subscription["plan_id"], subscription["status"], subscription["auto_enable"]) == ("free", "active", True)
    messages = body["balances"]["messages"]
    assert BALANCE_KEYS <= set(messages)
    assert (messages["granted"], messages["remaining"], messages["usage"]) == (100, 100, 0)
    balance = Balance.objects.get(customer=customer)
    assert messages["next_reset_at"] == int(balance.next_reset_at.timestamp() * 1000)
    assert messages["breakdown"][0]["reset"] == {
        "interval": "month",
        "interval_count": 1,
        "resets_at": messages["next_reset_at"],
    }
    actions = AuditEntry.objects.filter(customer=customer, actor_api_key=sandbox_key[0]).values_list(
        "action", flat=True
    )
    assert sorted(actions) == ["customer.create", "product.attach"]


def test_get_or_create_returns_the_existing_customer_and_fills_only_missing_details(api, customer):
    Customer.objects.filter(pk=customer.pk).update(email="")
    body = api.post(
        "customers.get_or_create", {"customer_id": "acme_corp", "name": "Other Name", "email": "new@acme.test"}
    ).json()
    assert (body["name"], body["email"]) == ("Acme Corp", "new@acme.test")
    assert Customer.objects.filter(customer_id="acme_corp").count() == 1
    assert CustomerProduct.objects.filter(customer=customer).count() == 1


def test_update_merges_metadata_where_null_removes_a_key(api, customer):
    Customer.objects.filter(pk=customer.pk).update(metadata={"a": 1, "b": 2})
    body = api.post(
        "customers.update", {"customer_id": "acme_corp", "metadata": {"b": None, "c": "x"}, "fingerprint": "fp-1"}
    ).json()
    assert body["metadata"] == {"a": 1, "c": "x"}
    assert body["fingerprint"] == "fp-1"
    assert body["name"] == "Acme Corp"  # left out, left alone
    customer.refresh_from_db()
    assert customer.metadata == {"a": 1, "c": "x"}
    entry = AuditEntry.objects.get(customer=customer, action="customer.update")
    assert entry.actor_label.startswith("API key Backend (test)")
    assert entry.before == {"metadata": {"a": 1, "b": 2}, "fingerprint": ""}


def test_update_with_null_clears_a_detail_and_new_customer_id_renames(api, customer):
    body = api.post("customers.update", {"customer_id": "acme_corp", "email": None, "new_customer_id": "acme-2"}).json()
    assert (body["id"], body["email"]) == ("acme-2", None)
    assert api.post("customers.get", {"customer_id": "acme_corp"}).status_code == 404
    assert api.post("customers.get", {"customer_id": "acme-2"}).json()["name"] == "Acme Corp"


def test_delete_is_soft_and_a_restored_customer_comes_back(api, customer, ops):
    assert api.post("customers.delete", {"customer_id": "acme_corp"}).json() == {"success": True}
    customer.refresh_from_db()
    assert customer.deleted_at is not None
    assert api.post("customers.get", {"customer_id": "acme_corp"}).status_code == 404
    assert api.post("customers.list").json()["list"] == []
    customer_restore(customer=customer, actor=ops)
    assert api.post("customers.get", {"customer_id": "acme_corp"}).status_code == 200


def test_delete_without_stripe_connected_deletes_here_only(api, customer, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    assert api.post("customers.delete", {"customer_id": "acme_corp", "delete_in_stripe": True}).json() == {
        "success": True
    }
    assert Customer.objects.get(pk=customer.pk).deleted_at is not None


def test_customers_list_pages_with_a_cursor_newest_first(api, catalogue):
    for n in range(5):
        api.post("customers.get_or_create", {"customer_id": f"c{n}"})
    first = api.post("customers.list", {"limit": 2}).json()
    assert [c["id"] for c in first["list"]] == ["c4", "c3"]
    second = api.post("customers.list", {"limit": 2, "start_cursor": first["next_cursor"]}).json()
    assert [c["id"] for c in second["list"]] == ["c2", "c1"]
    third = api.post("customers.list", {"limit": 2, "start_cursor": second["next_cursor"]}).json()
    assert ([c["id"] for c in third["list"]], third["next_cursor"]) == (["c0"], None)
    oldest = api.post("customers.list", {"limit": 2, "sort_order": "asc"}).json()
    assert [c["id"] for c in oldest["list"]] == ["c0", "c1"]


def test_customers_list_searches_and_filters_by_plan(api, customer, catalogue):
    api.post("customers.get_or_create", {"customer_id": "globex", "name": "Globex", "email": "hank@globex.test"})
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    assert [c["id"] for c in api.post("customers.list", {"search": "GLOBEX.test"}).json()["list"]] == ["globex"]
    on_pro = api.post("customers.list", {"plans": [{"id": "pro"}]}).json()["list"]
    assert [c["id"] for c in on_pro] == ["acme_corp"]
    assert api.post("customers.list", {"plans": [{"id": "pro", "versions": [2]}]}).json()["list"] == []


def test_customers_list_reads_a_page_in_a_constant_number_of_queries(api, catalogue, django_assert_max_num_queries):
    for n in range(15):
        api.post("customers.get_or_create", {"customer_id": f"c{n}"})
    with django_assert_max_num_queries(15):
        assert len(api.post("customers.list", {"limit": 15}).json()["list"]) == 15


def test_boolean_features_are_flags_and_statuses_follow_autumn(api, customer, catalogue):
    cp = product_attach(
        customer=customer,
        product=catalogue["pro"],
        actor=None,
        status="trialing",
        trial_ends_at=timezone.now() + timedelta(days=14),
    )
    body = api.post("customers.get", {"customer_id": "acme_corp"}).json()
    assert set(body["flags"]) == {"sso"}
    assert body["flags"]["sso"]["plan_id"] == "pro"
    assert set(body["balances"]) == {"messages", "seats"}
    assert body["balances"]["seats"]["next_reset_at"] is None
    assert body["balances"]["seats"]["breakdown"][0]["reset"] is None
    [pro] = body["subscriptions"]
    assert (pro["plan_id"], pro["status"], pro["past_due"]) == ("pro", "active", False)
    assert pro["trial_ends_at"] == int(cp.trial_ends_at.timestamp() * 1000)
    CustomerProduct.objects.filter(pk=cp.pk).update(status="past_due")
    [pro] = api.post("customers.get", {"customer_id": "acme_corp"}).json()["subscriptions"]
    assert (pro["status"], pro["past_due"]) == ("active", True)


def test_overage_shows_as_usage_beyond_granted_with_remaining_at_zero(api, customer, catalogue):
    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "api_calls", "value": 100500})
    api_calls = api.post("customers.get", {"customer_id": "acme_corp"}).json()["balances"]["api_calls"]
    assert (api_calls["granted"], api_calls["remaining"], api_calls["usage"]) == (100000, 0, 100500)
    assert api_calls["overage_allowed"] is True
    assert api_calls["breakdown"][0]["price"] == {
        "amount": 1,
        "billing_units": 1000,
        "billing_method": "usage_based",
        "max_purchase": None,
    }
    assert Balance.objects.get(customer=customer, feature=catalogue["api_calls"]).remaining == -500


def test_reading_a_customer_applies_a_due_reset(api, customer):
    balance = Balance.objects.get(customer=customer)
    Balance.objects.filter(pk=balance.pk).update(remaining=10, next_reset_at=timezone.now() - timedelta(hours=1))
    messages = api.post("customers.get", {"customer_id": "acme_corp"}).json()["balances"]["messages"]
    assert messages["remaining"] == 100
    assert messages["next_reset_at"] > int(timezone.now().timestamp() * 1000)


def test_expand_adds_invoices_and_rewards(api, customer, ops):
    customer.invoices.create(
        stripe_id="in_1",
        status="paid",
        total=2999,
        amount_paid=2999,
        product_ids=["pro"],
        hosted_invoice_url="https://invoice.example/in_1",
    )
    reward = Reward.objects.create(
        reward_id="launch20",
        name="Launch 20%",
        type="percentage_discount",
        value=20,
        duration="months",
        duration_months=3,
    )
    reward_apply(customer=customer, reward=reward, actor=ops)
    body = api.post("customers.get", {"customer_id": "acme_corp", "expand": ["invoices", "rewards"]}).json()
    [invoice] = body["invoices"]
    assert (invoice["stripe_id"], invoice["total"], invoice["status"]) == ("in_1", 29.99, "paid")
    [discount] = body["rewards"]["discounts"]
    assert (discount["id"], discount["discount_value"], discount["duration_value"]) == ("launch20", 20, 3)


# --- the documented form and the REST forms -----------------------------------------------------


def test_documented_update_form_changes_name_and_email(api, customer):
    response = api.post(
        "customers/update", {"customer_id": "acme_corp", "name": "Mr New Name", "email": "newemail@example.com"}
    )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert (customer.name, customer.email) == ("Mr New Name", "newemail@example.com")


def test_rest_forms_create_get_update_patch_list_and_delete(api, catalogue):
    created = api.post("customers", {"id": "rest_1", "name": "Rest One"})
    assert created.status_code == 200
    assert {"products", "features"} <= set(created.json()) and CUSTOMER_KEYS <= set(created.json())
    got = api.get("customers/rest_1").json()
    assert got["products"][0]["id"] == "free" and got["features"]["messages"]["included_usage"] == 100
    assert api.post("customers/rest_1", {"name": "Renamed", "id": "rest_2"}).json()["id"] == "rest_2"
    assert api.patch("customers/rest_2", {"email": "r@x.test"}).json()["email"] == "r@x.test"
    listed = api.get("customers", {"limit": 5, "offset": 0}).json()
    assert (listed["total"], listed["limit"], listed["offset"]) == (1, 5, 0)
    assert listed["list"][0]["name"] == "Renamed"
    assert api.delete("customers/rest_2").json() == {"success": True}
    assert api.get("customers/rest_2").status_code == 404
    assert api.delete("customers/rest_2").status_code == 404


def test_rest_path_with_bad_id_characters_is_refused(api, customer):
    response = api.get("customers/acme%00corp")
    assert response.status_code == 422
    assert "only letters" in response.json()["message"]


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_rest_list_refuses_bad_limits(api, limit):
    assert api.get("customers", {"limit": limit}).status_code == 422
