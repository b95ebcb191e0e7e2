"""events.list, invoices.list and attach."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CustomerProduct, Invoice, Product, Reward
from billing.services.rewards import reward_apply
from customers.models import AuditEntry


def track(api, value, feature_id="messages", customer_id="acme_corp", **extra):
    response = api.post(
        "balances.track", {"customer_id": customer_id, "feature_id": feature_id, "value": value, **extra}
    )
    assert response.status_code == 200, response.content
    return response


def test_events_list_newest_first_with_cursor_pages(api, customer):
    base = int((timezone.now() - timedelta(hours=1)).timestamp() * 1000)
    for n in range(5):
        track(api, n + 1, timestamp=base + n * 1000)
    first = api.post("events.list", {"customer_id": "acme_corp", "limit": 3}).json()
    assert [e["value"] for e in first["list"]] == [5, 4, 3]
    assert first["list"][0]["timestamp"] == base + 4000
    assert set(first["list"][0]) == {
        "id",
        "timestamp",
        "feature_id",
        "customer_id",
        "value",
        "properties",
        "deductions",
    }
    rest = api.post("events.list", {"customer_id": "acme_corp", "limit": 3, "start_cursor": first["next_cursor"]})
    assert ([e["value"] for e in rest.json()["list"]], rest.json()["next_cursor"]) == ([2, 1], None)


def test_events_list_filters_by_feature_and_time_range(api, customer, catalogue):
    from billing.services.products import product_attach

    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    base = int((timezone.now() - timedelta(hours=1)).timestamp() * 1000)
    track(api, 1, timestamp=base)
    track(api, 2, feature_id="api_calls", timestamp=base + 1000)
    track(api, 3, timestamp=base + 2000)
    by_feature = api.post("events.list", {"feature_id": "api_calls"}).json()["list"]
    assert [(e["feature_id"], e["value"]) for e in by_feature] == [("api_calls", 2)]
    in_range = api.post("events.list", {"custom_range": {"start": base + 1000, "end": base + 2000}}).json()["list"]
    assert [e["value"] for e in in_range] == [2]
    both = api.post("events.list", {"feature_id": ["messages", "api_calls"]}).json()["list"]
    assert len(both) == 3


def test_invoices_list_in_major_units_newest_first_filtered_by_status(api, customer):
    now = timezone.now()
    Invoice.objects.create(
        customer=customer,
        stripe_id="in_old",
        status="paid",
        total=9900,
        amount_paid=9900,
        product_ids=["pro"],
        created_at=now - timedelta(days=31),
    )
    Invoice.objects.create(
        customer=customer,
        stripe_id="in_new",
        status="open",
        total=2999,
        amount_paid=0,
        product_ids=["pro"],
        created_at=now,
        hosted_invoice_url="https://pay.example/in_new",
    )
    Invoice.objects.create(
        customer=customer,
        stripe_id="in_yen",
        status="paid",
        total=1200,
        currency="jpy",
        created_at=now - timedelta(days=60),
    )
    listed = api.post("invoices.list", {"customer_id": "acme_corp"}).json()
    assert [(i["stripe_id"], i["total"]) for i in listed["list"]] == [
        ("in_new", 29.99),
        ("in_old", 99),
        ("in_yen", 1200),
    ]
    newest = listed["list"][0]
    assert (newest["status"], newest["plan_ids"], newest["hosted_invoice_url"]) == (
        "open",
        ["pro"],
        "https://pay.example/in_new",
    )
    assert (newest["customer_id"], newest["processor_type"], newest["amount_paid"]) == ("acme_corp", "stripe", 0)
    paid = api.post("invoices.list", {"status": ["paid"], "limit": 1}).json()
    assert [i["stripe_id"] for i in paid["list"]] == ["in_old"]
    more = api.post("invoices.list", {"status": ["paid"], "limit": 1, "start_cursor": paid["next_cursor"]}).json()
    assert [i["stripe_id"] for i in more["list"]] == ["in_yen"]


@pytest.fixture
def free_addon(catalogue):
    product = Product.objects.create(product_id="beta_access", name="Beta access", is_add_on=True)
    product.items.create(feature=catalogue["sso"], interval="lifetime")
    return product


def test_attach_of_a_free_plan_attaches_at_once(api, customer, free_addon, sandbox_key):
    response = api.post("billing.attach", {"customer_id": "acme_corp", "plan_id": "beta_access"})
    assert response.json() == {
        "customer_id": "acme_corp",
        "payment_url": None,
        "checkout_url": None,
        "invoice": None,
        "required_action": None,
    }
    assert CustomerProduct.objects.filter(customer=customer, product=free_addon, status="active").exists()
    assert api.post("balances.check", {"customer_id": "acme_corp", "feature_id": "sso"}).json()["allowed"] is True
    entry = AuditEntry.objects.get(action="product.attach", target_id="beta_access")
    assert entry.actor_api_key == sandbox_key[0]


def test_legacy_attach_answers_in_the_older_shape(api, customer, free_addon):
    body = api.post("attach", {"customer_id": "acme_corp", "product_id": "beta_access"}).json()
    assert body == {
        "success": True,
        "customer_id": "acme_corp",
        "product_ids": ["beta_access"],
        "code": "new_product_attached",
        "message": "Attached beta_access to acme_corp.",
        "checkout_url": None,
    }


@pytest.fixture
def twenty_off(db):
    return Reward.objects.create(
        reward_id="twenty_off",
        name="20% off for 3 months",
        type="percentage_discount",
        value=Decimal(20),
        duration="months",
        duration_months=3,
    )


def test_attach_of_a_paid_plan_returns_a_checkout_url_with_the_discount_and_attaches_nothing_yet(
    api, customer, ops, twenty_off, fake_stripe
):
    reward_apply(customer=customer, reward=twenty_off, actor=ops)
    body = api.post(
        "billing.attach", {"customer_id": "acme_corp", "plan_id": "pro", "success_url": "https://app.example/thanks"}
    ).json()
    [session] = fake_stripe.sessions.values()
    assert body["payment_url"] == body["checkout_url"] == session["url"]
    assert body["payment_url"].startswith("https://checkout.stripe.com/")
    [sent] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert (sent.params["mode"], sent.params["success_url"]) == ("subscription", "https://app.example/thanks")
    assert sent.params["discounts"] == [{"coupon": Reward.objects.get().stripe_coupon_id}]
    assert sent.params["metadata"]["product_id"] == "pro"
    assert not CustomerProduct.objects.filter(customer=customer, product__product_id="pro").exists()
    assert AuditEntry.objects.filter(action="checkout.create", customer=customer).count() == 1

    legacy = api.post("attach", {"customer_id": "acme_corp", "product_id": "pro"}).json()
    assert legacy["code"] == "checkout_created" and legacy["checkout_url"].startswith("https://checkout.stripe.com/")


def test_stripe_failing_a_checkout_is_reported_and_changes_nothing(api, customer, fake_stripe):
    fake_stripe.queue_error(500, times=5, path="POST /v1/checkout/sessions")
    response = api.post("billing.attach", {"customer_id": "acme_corp", "plan_id": "pro"})
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_error" and "Nothing was changed here" in response.json()["message"]
    assert not AuditEntry.objects.filter(action="checkout.create").exists()
    assert not CustomerProduct.objects.filter(customer=customer, product__product_id="pro").exists()


def test_delete_in_stripe_deletes_there_first_when_connected(api, linked, fake_stripe, sandbox_key):
    stripe_id = linked.stripe_id
    assert api.post("customers.delete", {"customer_id": "acme_corp", "delete_in_stripe": True}).status_code == 200
    assert len(fake_stripe.requests_to("DELETE", f"/v1/customers/{stripe_id}")) == 1
    linked.refresh_from_db()
    assert linked.deleted_at is not None and linked.stripe_id == ""
    assert AuditEntry.objects.get(action="customer.delete").reason == "Also deleted in Stripe (delete_in_stripe)."
    assert AuditEntry.objects.get(action="customer.stripe_unlink").actor_api_key == sandbox_key[0]


def test_delete_in_stripe_failing_keeps_the_customer(api, linked, fake_stripe):
    fake_stripe.queue_error(500, times=5, path="DELETE /v1/customers/*")
    response = api.post("customers.delete", {"customer_id": "acme_corp", "delete_in_stripe": True})
    assert (response.status_code, response.json()["code"]) == (502, "stripe_error")
    linked.refresh_from_db()
    assert linked.deleted_at is None and linked.stripe_id.startswith("cus_")


def test_delete_without_delete_in_stripe_leaves_stripe_alone(api, linked, fake_stripe):
    assert api.post("customers.delete", {"customer_id": "acme_corp"}).status_code == 200
    assert fake_stripe.requests_to("DELETE", "/v1/customers/*") == []
