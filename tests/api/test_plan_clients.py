"""Autumn's real clients, unchanged, through a plan's lifecycle against a running server, with Stripe on the
local fake Stripe server: preview and attach, billing.update with each cancel action, the billing portal."""

from __future__ import annotations

import subprocess

import pytest
from autumn_sdk import Autumn
from autumn_sdk.errors import AutumnDefaultError

from billing.models import CustomerProduct
from customers.models import Customer
from customers.services.customers import customer_create
from tests.api.test_clients import JS_DIR, node_or_skip
from tests.helpers import subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(live_server, transactional_db, catalogue, sandbox_key, fake_stripe):
    """A running server, Stripe connected (the fake), and a subscribed Pro customer `sub_1`, halfway through its
    month: (base URL, raw key, fake Stripe, its subscription)."""
    customer = customer_create(env="sandbox", customer_id="sub_1", actor=None, name="Subscribed")
    stripe_customer = fake_stripe.add_customer(name="Subscribed")
    Customer.objects.filter(pk=customer.pk).update(stripe_id=stripe_customer["id"])
    customer.refresh_from_db()
    sub = subscribe(customer, catalogue["pro"], fake_stripe)
    return live_server.url, sandbox_key[1], fake_stripe, sub


def _plans(customer_id: str) -> dict[str, str]:
    rows = CustomerProduct.objects.filter(customer__customer_id=customer_id).exclude(status="expired")
    return {cp.product.product_id: cp.status_label for cp in rows.select_related("product")}


def test_python_client_previews_attaches_updates_cancels_and_opens_the_portal(server):
    url, raw_key, fake, sub = server
    with Autumn(secret_key=raw_key, server_url=url, fail_open=False) as autumn:
        autumn.customers.get_or_create(customer_id="new_1")
        preview = autumn.billing.preview_attach(customer_id="new_1", plan_id="pro")
        assert (preview.total, preview.redirect_to_checkout) == (99, True)
        checkout = autumn.billing.attach(customer_id="new_1", plan_id="pro")
        assert checkout.payment_url.startswith("https://checkout.stripe.com/")
        assert _plans("new_1") == {"free": "Active"}  # attached once Stripe reports the payment

        upgrade = autumn.billing.preview_attach(customer_id="sub_1", plan_id="scale")
        assert upgrade.redirect_to_checkout is False and 70 < upgrade.total < 80
        assert autumn.billing.attach(customer_id="sub_1", plan_id="scale").payment_url is None
        assert _plans("sub_1") == {"scale": "Active"}
        assert fake.subscriptions[sub["id"]]["last_proration_behavior"] == "always_invoice"

        assert autumn.billing.preview_update(customer_id="sub_1", plan_id="pro").intent == "update_plan"
        autumn.billing.update(customer_id="sub_1", plan_id="pro")
        assert _plans("sub_1") == {"scale": "Cancelling", "pro": "Scheduled"}
        autumn.billing.update(customer_id="sub_1", plan_id="scale", cancel_action="uncancel")
        assert _plans("sub_1") == {"scale": "Active"}
        autumn.billing.update(customer_id="sub_1", plan_id="scale", cancel_action="cancel_end_of_cycle")
        assert _plans("sub_1") == {"scale": "Cancelling"}
        assert fake.subscriptions[sub["id"]]["cancel_at_period_end"] is True
        autumn.billing.update(customer_id="sub_1", plan_id="scale", cancel_action="uncancel")
        assert fake.subscriptions[sub["id"]]["cancel_at_period_end"] is False
        autumn.billing.update(customer_id="sub_1", plan_id="scale", cancel_action="cancel_immediately")
        assert _plans("sub_1") == {"free": "Active"}
        assert fake.subscriptions[sub["id"]]["status"] == "canceled"

        portal = autumn.billing.open_customer_portal(customer_id="sub_1", return_url="https://app.test/account")
        assert portal.url.startswith("https://billing.stripe.test/p/session/")
        with pytest.raises(AutumnDefaultError) as refused:
            autumn.billing.update(customer_id="sub_1", plan_id="scale", cancel_action="uncancel")
        assert refused.value.status_code == 404


def test_js_client_previews_attaches_updates_cancels_and_opens_the_portal(server):
    node = node_or_skip()
    url, raw_key, fake, sub = server
    result = subprocess.run(
        [node, "plans.mjs", url, raw_key, "sub_1", "new_js"], cwd=JS_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plans scenario passed" in result.stdout
    assert _plans("sub_1") == {"free": "Active"}
    assert fake.subscriptions[sub["id"]]["status"] == "canceled"
    assert len(fake.portal_sessions) == 1
