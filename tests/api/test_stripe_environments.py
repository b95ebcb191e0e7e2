"""Through the API, each environment's customers reach only their own Stripe mode: sandbox the test
mode (the `fake_stripe` fake), live the live mode (`fake_stripe_live`), never the other."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import CustomerProduct, Reward
from billing.services.rewards import reward_apply
from customers.models import AuditEntry, Customer


@pytest.fixture
def twenty_off(db):
    return Reward.objects.create(
        reward_id="twenty_off",
        name="20% off",
        type="percentage_discount",
        value=Decimal(20),
        duration="months",
        duration_months=3,
    )


def attach_pro(api, customer_id: str):
    return api.post(
        "billing.attach", {"customer_id": customer_id, "plan_id": "pro", "success_url": "https://app.example/thanks"}
    )


def test_a_live_checkout_goes_to_stripe_live_mode_and_a_sandbox_one_to_test_mode(
    api, live_api, customer, globex, ops, twenty_off, fake_stripe, fake_stripe_live
):
    reward_apply(customer=globex, reward=twenty_off, actor=ops)
    live = attach_pro(live_api, "globex")
    assert live.status_code == 200, live.content
    [live_session] = fake_stripe_live.sessions.values()
    assert live.json()["payment_url"] == live_session["url"]
    assert fake_stripe.requests == []  # nothing of the live customer's reached test mode
    [created] = fake_stripe_live.requests_to("POST", "/v1/customers")
    assert created.params["metadata"] == {"customer_id": "globex", "env": "live"}
    globex.refresh_from_db()
    assert globex.stripe_id in fake_stripe_live.customers and globex.stripe_id not in fake_stripe.customers
    # The coupon is made in live mode and kept as the reward's live coupon.
    reward = Reward.objects.get()
    assert (reward.stripe_coupon_id, list(fake_stripe_live.coupons)) == ("", [reward.stripe_live_coupon_id])

    live_requests = len(fake_stripe_live.requests)
    sandbox = attach_pro(api, "acme_corp")
    assert sandbox.status_code == 200, sandbox.content
    [sandbox_session] = fake_stripe.sessions.values()
    assert sandbox.json()["payment_url"] == sandbox_session["url"]
    assert len(fake_stripe_live.requests) == live_requests  # nothing of the sandbox customer's reached live mode
    assert fake_stripe.coupons == {}  # acme has no discount; the live coupon was not borrowed


def test_without_a_live_key_a_live_paid_attach_is_refused_and_nothing_is_sent(live_api, globex, fake_stripe, settings):
    assert settings.STRIPE_TEST_SECRET_KEY and not settings.STRIPE_LIVE_SECRET_KEY  # sandbox connected, live not
    response = attach_pro(live_api, "globex")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "stripe_not_connected"
    assert "Stripe is not connected for live" in body["message"] and "STRIPE_LIVE_SECRET_KEY" in body["message"]
    assert fake_stripe.requests == []  # the test-mode key was not used instead
    assert not CustomerProduct.objects.filter(customer=globex, product__product_id="pro").exists()
    assert not AuditEntry.objects.filter(action="checkout.create").exists()


def test_a_sandbox_paid_attach_without_a_test_key_is_refused_even_with_a_live_key(
    api, customer, fake_stripe, fake_stripe_live, settings
):
    settings.STRIPE_TEST_SECRET_KEY = ""
    response = attach_pro(api, "acme_corp")
    assert (response.status_code, response.json()["code"]) == (400, "stripe_not_connected")
    assert "STRIPE_TEST_SECRET_KEY" in response.json()["message"]
    assert fake_stripe.requests == [] and fake_stripe_live.requests == []


def test_delete_in_stripe_of_a_live_customer_deletes_it_in_live_mode_only(
    live_api, globex, fake_stripe, fake_stripe_live
):
    stripe_id = fake_stripe_live.add_customer(name="Globex")["id"]
    Customer.objects.filter(pk=globex.pk).update(stripe_id=stripe_id)
    response = live_api.post("customers.delete", {"customer_id": "globex", "delete_in_stripe": True})
    assert response.status_code == 200
    assert len(fake_stripe_live.requests_to("DELETE", f"/v1/customers/{stripe_id}")) == 1
    assert fake_stripe.requests == []
    globex.refresh_from_db()
    assert globex.deleted_at is not None and globex.stripe_id == ""


def test_delete_in_stripe_without_a_live_key_deletes_here_only_and_sends_nothing(live_api, globex, fake_stripe):
    Customer.objects.filter(pk=globex.pk).update(stripe_id="cus_globex_live")
    response = live_api.post("customers.delete", {"customer_id": "globex", "delete_in_stripe": True})
    assert response.status_code == 200
    assert fake_stripe.requests == []
    globex.refresh_from_db()
    assert globex.deleted_at is not None and globex.stripe_id == "cus_globex_live"
