"""Sandbox and live never meet in Stripe: each environment has its own key (test mode for sandbox,
live mode for live) and webhook signing secret, and nothing of one environment reaches the other's."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from billing.models import CustomerProduct, Invoice, Reward, StripeEvent
from billing.services.rewards import reward_apply
from billing.stripe_io.client import StripeError
from billing.stripe_io.config import is_configured, stripe_secrets, webhook_secret
from billing.stripe_io.customers import customer_delete_in_stripe
from customers.models import ApiKey, AuditEntry, Customer
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_update
from tests.fake_stripe import LIVE_WEBHOOK_SECRET, WEBHOOK_SECRET, event, signed

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY, LIVE_KEY = "sk_test_51abcSECRETtest", "sk_live_51abcSECRETlive"


# --- configuration ------------------------------------------------------------------------------


def test_each_environment_takes_the_key_of_its_own_mode():
    assert stripe_secrets(
        {
            "STRIPE_TEST_SECRET_KEY": TEST_KEY,
            "STRIPE_LIVE_SECRET_KEY": "rk_live_restricted",
            "STRIPE_TEST_WEBHOOK_SECRET": "whsec_t",
            "STRIPE_LIVE_WEBHOOK_SECRET": "whsec_l",
        }
    ) == {
        "STRIPE_TEST_SECRET_KEY": TEST_KEY,
        "STRIPE_LIVE_SECRET_KEY": "rk_live_restricted",
        "STRIPE_TEST_WEBHOOK_SECRET": "whsec_t",
        "STRIPE_LIVE_WEBHOOK_SECRET": "whsec_l",
    }
    assert stripe_secrets({}) == {
        "STRIPE_TEST_SECRET_KEY": "",
        "STRIPE_LIVE_SECRET_KEY": "",
        "STRIPE_TEST_WEBHOOK_SECRET": "",
        "STRIPE_LIVE_WEBHOOK_SECRET": "",
    }


@pytest.mark.parametrize(
    ("legacy_key", "env_setting"), [(TEST_KEY, "STRIPE_TEST_SECRET_KEY"), (LIVE_KEY, "STRIPE_LIVE_SECRET_KEY")]
)
def test_the_old_single_key_serves_only_the_environment_its_prefix_names(legacy_key, env_setting):
    found = stripe_secrets({"STRIPE_SECRET_KEY": legacy_key, "STRIPE_WEBHOOK_SECRET": "whsec_old"})
    other_setting = ({"STRIPE_TEST_SECRET_KEY", "STRIPE_LIVE_SECRET_KEY"} - {env_setting}).pop()
    assert (found[env_setting], found[other_setting]) == (legacy_key, "")
    webhook = env_setting.replace("SECRET_KEY", "WEBHOOK_SECRET")
    other_webhook = other_setting.replace("SECRET_KEY", "WEBHOOK_SECRET")
    assert (found[webhook], found[other_webhook]) == ("whsec_old", "")
    # The same value under both names is no contradiction.
    assert stripe_secrets({"STRIPE_SECRET_KEY": legacy_key, env_setting: legacy_key})[env_setting] == legacy_key


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"STRIPE_TEST_SECRET_KEY": LIVE_KEY}, "STRIPE_TEST_SECRET_KEY must be a test-mode key"),
        ({"STRIPE_LIVE_SECRET_KEY": TEST_KEY}, "STRIPE_LIVE_SECRET_KEY must be a live-mode key"),
        ({"STRIPE_LIVE_SECRET_KEY": "rk_test_restricted"}, "STRIPE_LIVE_SECRET_KEY must be a live-mode key"),
        ({"STRIPE_LIVE_SECRET_KEY": "pk_live_publishable"}, "STRIPE_LIVE_SECRET_KEY is not a Stripe secret key"),
        ({"STRIPE_TEST_SECRET_KEY": "hunter2"}, "STRIPE_TEST_SECRET_KEY is not a Stripe secret key"),
        ({"STRIPE_SECRET_KEY": "whsec_SECRETnot_a_key"}, "STRIPE_SECRET_KEY is not a Stripe secret key"),
        (
            {"STRIPE_SECRET_KEY": TEST_KEY, "STRIPE_TEST_SECRET_KEY": "sk_test_another"},
            "STRIPE_SECRET_KEY and STRIPE_TEST_SECRET_KEY both set the sandbox Stripe key, to different keys",
        ),
        (
            {
                "STRIPE_SECRET_KEY": LIVE_KEY,
                "STRIPE_WEBHOOK_SECRET": "whsec_a",
                "STRIPE_LIVE_WEBHOOK_SECRET": "whsec_b",
            },
            "STRIPE_WEBHOOK_SECRET and STRIPE_LIVE_WEBHOOK_SECRET both set the live webhook signing secret",
        ),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_a"}, "STRIPE_SECRET_KEY is not set"),
        (
            {"STRIPE_TEST_WEBHOOK_SECRET": "whsec_same", "STRIPE_LIVE_WEBHOOK_SECRET": "whsec_same"},
            "are the same secret",
        ),
    ],
)
def test_a_key_of_the_wrong_mode_or_a_contradiction_is_refused_without_repeating_the_secret(environ, message):
    with pytest.raises(ImproperlyConfigured, match=message) as refused:
        stripe_secrets(environ)
    assert "SECRET" not in str(refused.value).replace("_SECRET_KEY", "").replace("_WEBHOOK_SECRET", "")


def test_the_app_does_not_start_with_a_live_key_for_sandbox():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    environ["STRIPE_TEST_SECRET_KEY"] = LIVE_KEY
    run = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "(billing.E001) STRIPE_TEST_SECRET_KEY must be a test-mode key" in run.stderr
    assert LIVE_KEY not in run.stderr


def test_the_settings_import_no_app_code():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    environ["STRIPE_TEST_SECRET_KEY"] = LIVE_KEY  # a wrong key is the system check's to refuse, not the settings'
    code = (
        "import sys, autumn_admin.settings;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('billing', 'customers')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_legacy_key_serves_the_environment_its_prefix_names(settings):
    settings.STRIPE_TEST_SECRET_KEY = settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.STRIPE_TEST_WEBHOOK_SECRET = settings.STRIPE_LIVE_WEBHOOK_SECRET = ""
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = LIVE_KEY, "whsec_old"
    assert (is_configured("live"), is_configured("sandbox")) == (True, False)
    assert (webhook_secret("live"), webhook_secret("sandbox")) == ("whsec_old", "")


# --- what is sent, and where --------------------------------------------------------------------


@pytest.fixture
def globex_linked(globex, fake_stripe_live):
    stripe_id = fake_stripe_live.add_customer(name="Globex")["id"]
    Customer.objects.filter(pk=globex.pk).update(stripe_id=stripe_id)
    globex.refresh_from_db()
    return globex


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


def test_each_customers_details_and_coupons_go_to_its_own_stripe_mode(
    linked, globex_linked, ops, twenty_off, fake_stripe, fake_stripe_live, django_capture_on_commit_callbacks
):
    fake_stripe.add_subscription(customer=linked.stripe_id)
    fake_stripe_live.add_subscription(customer=globex_linked.stripe_id)
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=globex_linked, actor=ops, name="Globex Live")
        reward_apply(customer=globex_linked, reward=twenty_off, actor=ops)
    assert fake_stripe.requests == []
    assert fake_stripe_live.customers[globex_linked.stripe_id]["name"] == "Globex Live"
    twenty_off.refresh_from_db()
    assert list(fake_stripe_live.coupons) == [twenty_off.stripe_live_coupon_id] and twenty_off.stripe_coupon_id == ""

    live_requests = len(fake_stripe_live.requests)
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=linked, actor=ops, name="Acme Sandbox")
        reward_apply(customer=linked, reward=twenty_off, actor=ops)
    assert len(fake_stripe_live.requests) == live_requests
    assert fake_stripe.customers[linked.stripe_id]["name"] == "Acme Sandbox"
    twenty_off.refresh_from_db()
    # Its own test-mode coupon: a live coupon id means nothing in test mode.
    assert list(fake_stripe.coupons) == [twenty_off.stripe_coupon_id] != [twenty_off.stripe_live_coupon_id]
    [sub] = fake_stripe.subscriptions.values()
    assert sub["discount_coupons"] == [twenty_off.stripe_coupon_id]


def test_without_a_live_key_a_live_customers_changes_send_nothing_anywhere(
    globex, ops, twenty_off, fake_stripe, django_capture_on_commit_callbacks
):
    Customer.objects.filter(pk=globex.pk).update(stripe_id="cus_globex_live")
    globex.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        customer_update(customer=globex, actor=ops, name="Offline")
        reward_apply(customer=globex, reward=twenty_off, actor=ops)
    assert callbacks == [] and fake_stripe.requests == []
    with pytest.raises(StripeError, match="Stripe is not connected for live"):
        customer_delete_in_stripe(customer=globex)
    assert fake_stripe.requests == []
    globex.refresh_from_db()
    assert globex.stripe_id == "cus_globex_live" and globex.stripe_sync_error == ""


def test_a_key_of_the_other_mode_set_while_running_is_never_used(linked, fake_stripe, settings):
    settings.STRIPE_TEST_SECRET_KEY = "sk_live_fake_key"
    with pytest.raises(StripeError, match="STRIPE_TEST_SECRET_KEY is not a test-mode key"):
        customer_delete_in_stripe(customer=linked)
    assert fake_stripe.requests == []


def test_the_delete_popup_offers_delete_in_stripe_only_where_connected(ops_client, linked, globex, fake_stripe):
    Customer.objects.filter(pk=globex.pk).update(stripe_id="cus_globex_live")
    assert "also_delete_in_stripe" in ops_client.get("/customers/acme_corp/delete/").content.decode()
    ops_client.post("/env/", {"env": "live"})
    page = ops_client.get("/customers/globex/delete/")
    assert page.status_code == 200 and "also_delete_in_stripe" not in page.content.decode()


def sync(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("sync_stripe", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_sync_stripe_reads_each_environment_with_its_own_key(linked, globex_linked, fake_stripe, fake_stripe_live):
    fake_stripe.add_invoice(customer=linked.stripe_id, id="in_sandbox")
    fake_stripe_live.add_invoice(customer=globex_linked.stripe_id, id="in_live")
    out, _ = sync()
    assert "acme_corp (sandbox, " in out and "globex (live, " in out
    assert list(Invoice.objects.filter(customer=linked).values_list("stripe_id", flat=True)) == ["in_sandbox"]
    assert list(Invoice.objects.filter(customer=globex_linked).values_list("stripe_id", flat=True)) == ["in_live"]
    assert {r.query["customer"] for r in fake_stripe.requests_to("GET", "/v1/invoices")} == {linked.stripe_id}
    assert {r.query["customer"] for r in fake_stripe_live.requests_to("GET", "/v1/invoices")} == {
        globex_linked.stripe_id
    }

    live_only, _ = sync("--env", "live")
    assert "globex (live, " in live_only and "acme_corp" not in live_only


def test_sync_stripe_skips_an_environment_without_a_key(linked, globex, fake_stripe):
    Customer.objects.filter(pk=globex.pk).update(stripe_id="cus_globex_live")
    out, _ = sync()
    assert "Skipping live customers: Stripe is not connected for live (STRIPE_LIVE_SECRET_KEY is not set)." in out
    assert "acme_corp (sandbox, " in out and "globex" not in out
    assert {r.query["customer"] for r in fake_stripe.requests_to("GET", "/v1/invoices")} == {linked.stripe_id}
    with pytest.raises(CommandError, match="Stripe is not connected for live: set STRIPE_LIVE_SECRET_KEY"):
        sync("--env", "live")


# --- webhooks -----------------------------------------------------------------------------------


@pytest.fixture
def twins(customer, globex, settings):
    """A sandbox and a live customer linked to the same Stripe id, and both signing secrets set."""
    settings.STRIPE_TEST_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_LIVE_WEBHOOK_SECRET = LIVE_WEBHOOK_SECRET
    Customer.objects.filter(pk__in=[customer.pk, globex.pk]).update(stripe_id="cus_shared")
    return customer, globex


def paid_invoice(invoice_id: str = "in_1") -> dict:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": "cus_shared",
        "status": "paid",
        "total": 9900,
        "amount_paid": 9900,
        "currency": "usd",
        "created": 1_760_000_000,
    }


def deliver(client, payload: dict, secret: str):
    body, header = signed(payload, secret=secret)
    return client.post("/webhooks/stripe", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def test_a_live_event_changes_only_live_customers_and_a_test_event_only_sandbox_ones(client, twins):
    sandbox, live = twins
    response = deliver(
        client, event("invoice.paid", paid_invoice("in_live"), created=100, livemode=True), LIVE_WEBHOOK_SECRET
    )
    assert (response.status_code, response.json()["outcome"]) == (200, "created")
    assert list(Invoice.objects.values_list("customer", "stripe_id")) == [(live.pk, "in_live")]

    deliver(client, event("invoice.paid", paid_invoice("in_test"), created=100), WEBHOOK_SECRET)
    assert Invoice.objects.get(stripe_id="in_test").customer == sandbox
    assert dict(StripeEvent.objects.values_list("event_id", "env")) == {
        "evt_invoice_paid_100_in_live": "live",
        "evt_invoice_paid_100_in_test": "sandbox",
    }

    deliver(
        client,
        event("customer.deleted", {"id": "cus_shared", "object": "customer"}, created=200, livemode=True),
        LIVE_WEBHOOK_SECRET,
    )
    sandbox.refresh_from_db()
    live.refresh_from_db()
    assert (sandbox.stripe_id, live.stripe_id) == ("cus_shared", "")


@pytest.mark.parametrize(
    ("livemode", "secret", "signed_for", "why"),
    [
        (
            True,
            WEBHOOK_SECRET,
            "sandbox",
            "ignored: a live-mode event signed with the sandbox signing secret (STRIPE_TEST_WEBHOOK_SECRET); "
            "live events "
            "count only when signed with STRIPE_LIVE_WEBHOOK_SECRET",
        ),
        (
            False,
            LIVE_WEBHOOK_SECRET,
            "live",
            "ignored: a test-mode event signed with the live signing secret (STRIPE_LIVE_WEBHOOK_SECRET); "
            "sandbox events "
            "count only when signed with STRIPE_TEST_WEBHOOK_SECRET",
        ),
    ],
)
def test_an_event_whose_mode_disagrees_with_the_secret_that_signed_it_is_recorded_as_ignored(
    client, twins, livemode, secret, signed_for, why
):
    audit_before = AuditEntry.objects.count()
    for payload in (
        event("invoice.paid", paid_invoice(), created=100, livemode=livemode),
        event(
            "customer.subscription.created",
            {
                "id": "sub_1",
                "object": "subscription",
                "customer": "cus_shared",
                "status": "active",
                "metadata": {"product_id": "pro"},
            },
            created=100,
            livemode=livemode,
        ),
        event("customer.deleted", {"id": "cus_shared", "object": "customer"}, created=100, livemode=livemode),
    ):
        response = deliver(client, payload, secret)
        assert (response.status_code, response.json()["outcome"]) == (200, why)
        stored = StripeEvent.objects.get(event_id=payload["id"])
        assert (stored.env, stored.outcome) == (signed_for, why)
    assert Invoice.objects.count() == 0
    assert not CustomerProduct.objects.filter(product__product_id="pro").exists()
    assert set(Customer.objects.values_list("stripe_id", flat=True)) == {"cus_shared"}
    assert AuditEntry.objects.count() == audit_before


def test_with_only_the_live_secret_a_test_signed_event_is_refused(client, customer, globex, settings):
    settings.STRIPE_TEST_WEBHOOK_SECRET = ""
    settings.STRIPE_LIVE_WEBHOOK_SECRET = LIVE_WEBHOOK_SECRET
    response = deliver(client, event("invoice.paid", paid_invoice(), created=100), WEBHOOK_SECRET)
    assert response.status_code == 400 and "Stripe-Signature" in response.json()["error"]
    assert StripeEvent.objects.count() == 0


# --- the dashboard ------------------------------------------------------------------------------


def test_the_status_page_shows_the_current_environments_connection_and_events_only(
    ops_client, customer, fake_stripe, settings
):
    settings.STRIPE_LIVE_WEBHOOK_SECRET = LIVE_WEBHOOK_SECRET
    StripeEvent.objects.create(
        event_id="evt_sandbox_1", type="invoice.paid", created=1, env="sandbox", outcome="created"
    )
    StripeEvent.objects.create(
        event_id="evt_live_1",
        type="invoice.paid",
        created=1,
        env="live",
        outcome="ignored: a test-mode event signed with the live signing secret",
    )

    sandbox = ops_client.get("/stripe/").content.decode()
    assert "Connected</span> to <strong>Example Billing Ltd</strong>" in sandbox and "test mode" in sandbox
    assert "evt_sandbox_1" in sandbox and "evt_live_1" not in sandbox
    assert (
        "STRIPE_TEST_WEBHOOK_SECRET" in sandbox and 'Stripe <span class="muted">(not connected)</span>' not in sandbox
    )

    ops_client.post("/env/", {"env": "live"})
    live = ops_client.get("/stripe/").content.decode()
    assert 'Stripe is not connected for live: <span class="mono">STRIPE_LIVE_SECRET_KEY</span> is not set' in live
    assert 'Stripe <span class="muted">(not connected)</span>' in live  # the menu, for live
    assert "evt_live_1" in live and "ignored: a test-mode event signed with the live signing secret" in live
    assert "evt_sandbox_1" not in live and "Example Billing Ltd" not in live
    assert len(fake_stripe.requests_to("GET", "/v1/account")) == 1  # only the sandbox page asked, with its key


def test_the_customer_page_says_stripe_is_not_connected_for_a_live_customer_without_a_live_key(
    ops_client, customer, globex, fake_stripe
):
    assert "Stripe not connected" not in ops_client.get("/customers/acme_corp/").content.decode()
    ops_client.post("/env/", {"env": "live"})
    assert "Stripe not connected" in ops_client.get("/customers/globex/").content.decode()


def test_the_api_keys_page_lists_and_revokes_the_current_environments_keys_only(ops_client, ops):
    sandbox_key, _ = api_key_create(env="sandbox", name="Sandbox worker", actor=ops)
    live_key, _ = api_key_create(env="live", name="Live worker", actor=ops)
    page = ops_client.get("/api-keys/").content.decode()
    assert "Sandbox worker" in page and "Live worker" not in page
    assert ops_client.post(f"/api-keys/{live_key.pk}/revoke/").status_code == 404
    live_key.refresh_from_db()
    assert live_key.revoked_at is None

    ops_client.post("/env/", {"env": "live"})
    page = ops_client.get("/api-keys/").content.decode()
    assert "Live worker" in page and "Sandbox worker" not in page


def test_a_key_form_posted_from_the_other_environments_page_creates_nothing(ops_client):
    ops_client.post("/env/", {"env": "live"})  # switched in another tab after the sandbox page was opened
    response = ops_client.post("/api-keys/", {"name": "Worker", "page_env": "sandbox"})
    assert response.status_code == 409
    assert "This form was opened in Sandbox; you have since switched to Live. Nothing was done." in (
        response.content.decode()
    )
    assert ApiKey.objects.count() == 0
