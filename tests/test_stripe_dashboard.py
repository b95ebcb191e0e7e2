"""The Stripe status page, and the dashboard without Stripe."""

from __future__ import annotations

import threading

import pytest
from django.test import Client

from billing.models import Invoice, StripeEvent
from customers.models import AuditEntry, Customer
from tests.fake_stripe import WEBHOOK_SECRET, event, signed


def test_without_stripe_the_dashboard_runs_and_says_stripe_is_not_connected(ops_client, customer, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    customers = ops_client.get("/customers/")
    assert customers.status_code == 200
    assert 'Stripe <span class="muted">(not connected)</span>' in customers.content.decode()
    assert ops_client.get("/customers/acme_corp/").status_code == 200

    page = ops_client.get("/stripe/")
    assert page.status_code == 200
    assert "Stripe is not connected" in page.content.decode()


def test_the_status_page_names_the_connected_account_and_asks_stripe_only_once_in_a_while(
    ops_client, customer, fake_stripe
):
    first = ops_client.get("/stripe/").content.decode()
    second = ops_client.get("/stripe/").content.decode()
    for page in (first, second):
        assert "Connected</span> to <strong>Example Billing Ltd</strong>" in page
        assert "acct_fake123" in page and "test mode" in page
    assert len(fake_stripe.requests_to("GET", "/v1/account")) == 1
    assert "(not connected)" not in first


def test_the_status_page_shows_why_stripe_is_not_reachable(ops_client, fake_stripe, settings):
    settings.STRIPE_LIVE_SECRET_KEY = "sk_live_revoked"
    ops_client.post("/env/", {"env": "live"})
    page = ops_client.get("/stripe/").content.decode()
    assert "Not reachable" in page and "live mode" in page
    assert "Stripe refused the API key; check STRIPE_LIVE_SECRET_KEY." in page


def test_the_status_page_does_not_wait_through_retries(ops_client, fake_stripe):
    fake_stripe.queue_error(500, times=3)
    page = ops_client.get("/stripe/").content.decode()
    assert "Not reachable" in page and "Stripe had an error (HTTP 500); try again." in page
    assert len(fake_stripe.requests_to("GET", "/v1/account")) == 1


def test_the_status_page_lists_failing_customers_and_recent_events(ops_client, customer, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    Customer.objects.filter(pk=customer.pk).update(
        stripe_sync_error="Name and email not sent to Stripe: Stripe had an error (HTTP 500); try again."
    )
    StripeEvent.objects.create(event_id="evt_123", type="invoice.paid", created=1, env="sandbox")
    page = ops_client.get("/stripe/").content.decode()
    assert 'href="/customers/acme_corp/"' in page
    assert "Name and email not sent to Stripe: Stripe had an error (HTTP 500); try again." in page
    assert "evt_123" in page and "invoice.paid" in page
    assert "no signing secret" in page or "signing secret set" in page


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_every_role_can_read_the_stripe_page(client, db, request, role, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    client.force_login(request.getfixturevalue(role))
    assert 'href="/stripe/"' in client.get("/customers/").content.decode()
    page = client.get("/stripe/")
    assert page.status_code == 200 and "Stripe is not connected" in page.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get("/stripe/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_event_at_once_apply_it_once(catalogue, settings):
    from customers.services.customers import customer_create

    settings.STRIPE_TEST_WEBHOOK_SECRET = WEBHOOK_SECRET
    customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None)
    Customer.objects.filter(pk=customer.pk).update(stripe_id="cus_acme")
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_acme",
        "status": "paid",
        "total": 500,
        "amount_paid": 500,
        "currency": "usd",
        "created": 1_760_000_000,
    }
    body, header = signed(event("invoice.paid", invoice, created=100))
    start, answers = threading.Barrier(2), []

    def deliver():
        from django.db import connection

        start.wait()
        try:
            answers.append(
                Client()
                .post("/webhooks/stripe", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
                .status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200, 200]
    assert StripeEvent.objects.count() == 1 and Invoice.objects.count() == 1
    assert AuditEntry.objects.filter(action="invoice.create").count() == 1
