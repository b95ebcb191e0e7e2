"""POST /webhooks/stripe: signed events from Stripe applied once each, in any order."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from django.test import Client

from billing.models import Balance, CustomerProduct, Invoice, StripeEvent
from customers.models import AuditEntry, Customer
from tests.fake_stripe import WEBHOOK_SECRET, event, signed

URL = "/webhooks/stripe"


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_TEST_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture
def linked(customer):
    Customer.objects.filter(pk=customer.pk).update(stripe_id="cus_acme")
    customer.refresh_from_db()
    return customer


def deliver(client, payload, **sign):
    body, header = signed(payload, **sign)
    return client.post(URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def invoice(**fields):
    return {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_acme",
        "status": "open",
        "total": 9900,
        "amount_paid": 0,
        "currency": "usd",
        "created": 1_760_000_000,
        "hosted_invoice_url": "https://invoice.stripe.com/i/in_1",
        "invoice_pdf": "https://pay.stripe.com/in_1/pdf",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1", "metadata": {"product_id": "pro"}},
        },
        "lines": {"object": "list", "data": [{"id": "il_1", "metadata": {}, "amount": 9900}]},
        **fields,
    }


def subscription(**fields):
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_acme",
        "status": "active",
        "metadata": {"product_id": "pro", "product_version": "1", "customer_id": "acme_corp"},
        "trial_end": None,
        "canceled_at": None,
        "ended_at": None,
        "start_date": 1_760_000_000,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "current_period_start": 1_760_000_000,
                    "current_period_end": 1_762_678_400,
                    "price": {"id": "price_x", "product": "prod_x"},
                }
            ],
        },
        **fields,
    }


def ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


# --- refusals -----------------------------------------------------------------------------------


def test_a_wrong_signature_is_refused_and_nothing_stored(client, linked, webhook_secret):
    response = deliver(client, event("invoice.paid", invoice(status="paid"), created=100), secret="whsec_other")
    assert response.status_code == 400
    assert "Stripe-Signature" in response.json()["error"]
    assert StripeEvent.objects.count() == 0 and Invoice.objects.count() == 0


def test_an_old_signature_is_refused(client, linked, webhook_secret):
    response = deliver(client, event("invoice.paid", invoice(), created=100), timestamp=int(time.time()) - 600)
    assert response.status_code == 400
    assert "too old" in response.json()["error"]
    assert StripeEvent.objects.count() == 0


def test_a_missing_signature_is_refused(client, linked, webhook_secret):
    body = json.dumps(event("invoice.paid", invoice(), created=100))
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_a_signed_body_that_is_not_json_is_refused(client, webhook_secret):
    response = deliver(client, "this is { not json")
    assert response.status_code == 400
    assert response.json() == {"error": "The body is not JSON."}


@pytest.mark.parametrize(
    "payload",
    [
        '["a", "list"]',
        '{"id": "evt_1"}',
        '{"id": "evt_1", "type": "invoice.paid", "created": "yesterday", "data": {"object": {}}}',
    ],
)
def test_signed_json_that_is_not_an_event_is_refused(client, db, webhook_secret, payload):
    response = deliver(client, payload)
    assert response.status_code == 400
    assert response.json() == {"error": "The body is not a Stripe event."}
    assert StripeEvent.objects.count() == 0


def test_without_a_webhook_secret_every_event_is_refused(client, linked, settings):
    settings.STRIPE_TEST_WEBHOOK_SECRET = ""
    response = deliver(client, event("invoice.paid", invoice(), created=100))
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_only_post_is_accepted(client, webhook_secret):
    assert client.get(URL).status_code == 405


def test_no_login_or_csrf_token_is_needed(linked, webhook_secret):
    response = deliver(Client(enforce_csrf_checks=True), event("invoice.created", invoice(), created=100))
    assert response.status_code == 200


# --- invoices -----------------------------------------------------------------------------------


def test_invoice_events_create_then_update_the_invoice_row(client, linked, catalogue, webhook_secret):
    response = deliver(client, event("invoice.finalized", invoice(), created=100))
    assert response.status_code == 200
    assert response.json()["outcome"] == "created"
    deliver(client, event("invoice.paid", invoice(status="paid", amount_paid=9900), created=160))

    stored = Invoice.objects.get()
    assert (stored.customer, stored.stripe_id, stored.status, stored.total, stored.amount_paid, stored.currency) == (
        linked,
        "in_1",
        "paid",
        9900,
        9900,
        "usd",
    )
    assert stored.hosted_invoice_url == "https://invoice.stripe.com/i/in_1"
    assert stored.invoice_pdf == "https://pay.stripe.com/in_1/pdf"
    assert stored.product_ids == ["pro"]
    assert stored.created_at == ts(1_760_000_000)
    assert stored.stripe_updated_at == 160
    created, updated = AuditEntry.objects.filter(target_type="invoice").order_by("id")
    assert (created.action, created.actor_label, created.customer) == ("invoice.create", "system", linked)
    assert (updated.action, updated.before, updated.after) == (
        "invoice.update",
        {"status": "open", "amount_paid": 0},
        {"status": "paid", "amount_paid": 9900},
    )
    assert updated.reason == "Stripe event evt_invoice_paid_160_in_1 (invoice.paid)"


@pytest.mark.parametrize(
    ("type", "status"),
    [
        ("invoice.created", "draft"),
        ("invoice.updated", "open"),
        ("invoice.payment_failed", "open"),
        ("invoice.voided", "void"),
        ("invoice.marked_uncollectible", "uncollectible"),
    ],
)
def test_each_invoice_event_type_is_applied(client, linked, webhook_secret, type, status):
    deliver(client, event(type, invoice(status=status, currency="EUR"), created=100))
    assert Invoice.objects.get().status == status
    assert Invoice.objects.get().currency == "eur"


def test_products_of_an_invoice_come_from_line_metadata_and_stripe_prices(client, linked, catalogue, webhook_secret):
    catalogue["scale"].prices.filter(type="fixed").update(stripe_price_id="price_scale_monthly")
    lines = {
        "object": "list",
        "data": [
            {"id": "il_1", "metadata": {"product_id": "seats_addon"}},
            {"id": "il_2", "metadata": {}, "pricing": {"price_details": {"price": "price_scale_monthly"}}},
            {"id": "il_3", "metadata": {"product_id": "not_ours"}},
        ],
    }
    deliver(client, event("invoice.created", invoice(parent=None, lines=lines), created=100))
    assert Invoice.objects.get().product_ids == ["seats_addon", "scale"]


def test_a_replayed_event_is_applied_once(client, linked, webhook_secret):
    paid = event("invoice.paid", invoice(status="paid", amount_paid=9900), created=100)
    first = deliver(client, paid)
    again = deliver(client, paid)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["outcome"] == "duplicate"
    assert StripeEvent.objects.get().event_id == paid["id"]
    assert Invoice.objects.count() == 1
    assert AuditEntry.objects.filter(target_type="invoice").count() == 1


def test_a_late_older_event_never_overwrites_newer_state(client, linked, webhook_secret):
    deliver(client, event("invoice.paid", invoice(status="paid", amount_paid=9900), created=200))
    late = deliver(client, event("invoice.finalized", invoice(status="open"), created=100))
    assert late.status_code == 200 and late.json()["outcome"] == "stale"
    stored = Invoice.objects.get()
    assert (stored.status, stored.amount_paid, stored.stripe_updated_at) == ("paid", 9900, 200)
    assert StripeEvent.objects.count() == 2  # the stale one is recorded as handled, not retried


def test_events_of_the_same_second_keep_the_later_stage(client, linked, webhook_secret):
    deliver(client, event("invoice.paid", invoice(status="paid", amount_paid=9900), created=100))
    deliver(client, event("invoice.finalized", invoice(status="open"), created=100))
    assert Invoice.objects.get().status == "paid"


def test_events_of_unknown_customers_or_types_are_acknowledged_and_change_nothing(client, linked, webhook_secret):
    unknown = deliver(client, event("invoice.paid", invoice(customer="cus_someone_else"), created=100))
    assert unknown.status_code == 200 and unknown.json()["outcome"] == "unknown customer"
    other = deliver(client, event("charge.refunded", {"id": "ch_1", "object": "charge"}, created=100))
    assert other.status_code == 200 and other.json()["outcome"] == "ignored"
    assert Invoice.objects.count() == 0
    assert StripeEvent.objects.count() == 2


# --- subscriptions ------------------------------------------------------------------------------


def test_a_new_subscription_puts_the_customer_on_its_product(client, linked, catalogue, webhook_secret):
    response = deliver(client, event("customer.subscription.created", subscription(), created=100))
    assert response.json()["outcome"] == "applied"

    pro = CustomerProduct.objects.get(customer=linked, product=catalogue["pro"])
    assert (pro.status, pro.stripe_subscription_id, pro.stripe_updated_at) == ("active", "sub_1", 100)
    assert (pro.current_period_start, pro.current_period_end) == (ts(1_760_000_000), ts(1_762_678_400))
    assert CustomerProduct.objects.get(customer=linked, product=catalogue["free"]).status == "expired"
    assert Balance.objects.get(customer_product=pro, feature=catalogue["messages"]).allowance == 5000
    attach = AuditEntry.objects.get(action="product.attach", target_id="pro")
    assert attach.actor_label == "system" and "customer.subscription.created" in attach.reason


def test_a_subscription_links_to_the_product_already_attached_here(client, linked, catalogue, webhook_secret):
    from billing.services.products import product_attach

    pro = product_attach(customer=linked, product=catalogue["pro"], actor=None)
    deliver(client, event("customer.subscription.updated", subscription(status="past_due"), created=100))
    pro.refresh_from_db()
    assert (pro.stripe_subscription_id, pro.status) == ("sub_1", "past_due")
    assert CustomerProduct.objects.filter(customer=linked, product=catalogue["pro"]).count() == 1


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [
        ("trialing", "trialing"),
        ("past_due", "past_due"),
        ("unpaid", "past_due"),
        ("active", "active"),
    ],
)
def test_subscription_statuses_map_to_product_statuses(
    client, linked, catalogue, webhook_secret, stripe_status, status
):
    deliver(client, event("customer.subscription.created", subscription(status="active"), created=100))
    deliver(
        client,
        event(
            "customer.subscription.updated",
            subscription(status=stripe_status, trial_end=1_761_000_000 if stripe_status == "trialing" else None),
            created=200,
        ),
    )
    pro = CustomerProduct.objects.get(stripe_subscription_id="sub_1")
    assert pro.status == status
    if stripe_status == "trialing":
        assert pro.trial_ends_at == ts(1_761_000_000)


def test_a_late_older_subscription_event_is_ignored(client, linked, catalogue, webhook_secret):
    deliver(client, event("customer.subscription.updated", subscription(status="past_due"), created=300))
    late = deliver(client, event("customer.subscription.updated", subscription(status="active"), created=200))
    assert late.json()["outcome"] == "stale"
    assert CustomerProduct.objects.get(stripe_subscription_id="sub_1").status == "past_due"


def test_a_deleted_subscription_expires_the_product_and_restores_the_default_plan(
    client, linked, catalogue, webhook_secret
):
    deliver(client, event("customer.subscription.created", subscription(), created=100))
    deleted = subscription(status="canceled", canceled_at=1_761_000_000, ended_at=1_761_000_100)
    deliver(client, event("customer.subscription.deleted", deleted, created=200))

    pro = CustomerProduct.objects.get(stripe_subscription_id="sub_1")
    assert (pro.status, pro.canceled_at, pro.ended_at) == ("expired", ts(1_761_000_000), ts(1_761_000_100))
    assert not Balance.objects.filter(customer_product=pro).exists()
    live = CustomerProduct.objects.filter(customer=linked, status="active")
    assert [cp.product.product_id for cp in live] == ["free"]
    update = AuditEntry.objects.filter(action="product.update", target_id="pro").latest("id")
    assert update.after["status"] == "expired" and update.actor_label == "system"

    revived = deliver(client, event("customer.subscription.updated", subscription(status="active"), created=300))
    assert revived.json()["outcome"] == "ended"
    pro.refresh_from_db()
    assert pro.status == "expired"


def test_an_unknown_subscription_that_is_not_paid_for_attaches_nothing(client, linked, catalogue, webhook_secret):
    response = deliver(client, event("customer.subscription.created", subscription(status="incomplete"), created=100))
    assert response.json()["outcome"] == "ignored"
    assert not CustomerProduct.objects.filter(product=catalogue["pro"]).exists()
    no_product = deliver(
        client, event("customer.subscription.created", subscription(id="sub_2", metadata={}), created=100)
    )
    assert no_product.json()["outcome"] == "unknown product"


# --- customers ----------------------------------------------------------------------------------


def test_a_deleted_stripe_customer_is_unlinked(client, linked, webhook_secret):
    response = deliver(
        client, event("customer.deleted", {"id": "cus_acme", "object": "customer", "deleted": True}, created=100)
    )
    assert response.json()["outcome"] == "unlinked"
    linked.refresh_from_db()
    assert linked.stripe_id == ""
    entry = AuditEntry.objects.get(action="customer.stripe_unlink")
    assert (entry.actor_label, entry.before) == ("system", {"stripe_id": "cus_acme"})


def test_deleting_another_stripe_customer_leaves_the_link_alone(client, linked, webhook_secret):
    deliver(client, event("customer.deleted", {"id": "cus_previous", "object": "customer"}, created=100))
    linked.refresh_from_db()
    assert linked.stripe_id == "cus_acme"


def test_a_subscription_known_only_by_its_price_never_takes_another_customers_custom_product(
    client, linked, catalogue, webhook_secret
):
    from billing.services.products import product_attach, product_customize
    from customers.services.customers import customer_create

    catalogue["pro"].prices.filter(type="fixed").update(stripe_price_id="price_pro")
    other = customer_create(env="live", customer_id="globex", actor=None)
    cp = product_attach(customer=other, product=catalogue["pro"], actor=None)
    for included in ("6000", "7000"):  # a custom Pro copies Pro's prices, Stripe price ids included
        cp = product_customize(
            customer=other,
            customer_product=cp,
            actor=None,
            reason="deal",
            items=[{"feature": catalogue["messages"], "included": included}],
        )

    response = deliver(
        client,
        event(
            "customer.subscription.created",
            subscription(metadata={}, items={"object": "list", "data": [{"id": "si_1", "price": {"id": "price_pro"}}]}),
            created=100,
        ),
    )

    assert response.json()["outcome"] == "applied"

    pro = CustomerProduct.objects.get(customer=linked, stripe_subscription_id="sub_1")
    assert pro.product == catalogue["pro"]
    assert Balance.objects.get(customer_product=pro, feature=catalogue["messages"]).allowance == 5000
