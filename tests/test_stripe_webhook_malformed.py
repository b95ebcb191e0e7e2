"""Correctly signed webhooks with malformed fields: a 400 or a recorded "ignored", never a 500, and
nothing changes. Each event type the webhook handles gets the same bad payloads, through real HTTP."""

from __future__ import annotations

import copy

import pytest

from billing.models import CustomerProduct, Invoice, StripeEvent
from billing.stripe_inbound.sync import HANDLERS
from customers.models import AuditEntry, Customer
from tests.fake_stripe import WEBHOOK_SECRET, event, signed

URL = "/webhooks/stripe"
INVOICE_TYPES = sorted(t for t in HANDLERS if t.startswith("invoice."))
SUBSCRIPTION_TYPES = sorted(t for t in HANDLERS if t.startswith("customer.subscription."))


def invoice() -> dict:
    return {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_acme",
        "status": "open",
        "total": 9900,
        "amount_paid": 0,
        "currency": "usd",
        "created": 1_760_000_000,
        "metadata": {},
        "hosted_invoice_url": "https://invoice.stripe.com/i/in_1",
        "invoice_pdf": "https://pay.stripe.com/in_1/pdf",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1", "metadata": {"product_id": "pro"}},
        },
        "lines": {
            "object": "list",
            "data": [
                {"id": "il_1", "metadata": {}, "amount": 9900, "pricing": {"price_details": {"price": "price_x"}}}
            ],
        },
    }


def subscription() -> dict:
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_acme",
        "status": "past_due",
        "metadata": {"product_id": "pro", "product_version": "1"},
        "trial_end": None,
        "canceled_at": None,
        "ended_at": None,
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
    }


def mutate(obj: dict, path: str, value) -> dict:
    """`obj` with the field at `path` ("lines.data.0.price") set to `value`."""
    obj = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return obj


BAD_INVOICE_FIELDS = [
    ("total", None),
    ("total", "abc"),
    ("total", [1]),
    ("total", 1.5),
    ("total", 2**70),
    ("total", True),
    ("amount_paid", "9900"),
    ("amount_paid", {"value": 1}),
    ("status", ["paid"]),
    ("status", {"s": "paid"}),
    ("status", 3),
    ("currency", 840),
    ("currency", ["usd"]),
    ("id", 42),
    ("id", ["in_1"]),
    ("id", "in_" + "x" * 300),
    ("customer", 123),
    ("customer", ["cus_acme"]),
    ("customer", {"id": 5}),
    ("created", "yesterday"),
    ("created", 10**20),
    ("hosted_invoice_url", {"url": "x"}),
    ("hosted_invoice_url", "javascript:alert(1)"),
    ("hosted_invoice_url", "https://" + "x" * 1000),
    ("invoice_pdf", 3),
    ("metadata", "product_id=pro"),
    ("metadata", ["pro"]),
    ("parent", "sub_1"),
    ("parent.subscription_details", ["sub_1"]),
    ("parent.subscription_details.subscription", 7),
    ("parent.subscription_details.metadata", "pro"),
    ("lines", "il_1"),
    ("lines.data", {"il_1": {}}),
    ("lines.data", ["il_1"]),
    ("lines.data.0.metadata", 1),
    ("lines.data.0.price", 7),
    ("lines.data.0.pricing", "price_x"),
    ("lines.data.0.pricing.price_details", []),
    ("lines.data.0.pricing.price_details.price", {"id": ["price_x"]}),
    ("subscription", 5),
]
BAD_SUBSCRIPTION_FIELDS = [
    ("id", 5),
    ("id", ["sub_1"]),
    ("id", "sub_" + "x" * 300),
    ("customer", 5),
    ("customer", ["cus_acme"]),
    ("status", ["active"]),
    ("status", {"active": True}),
    ("status", 1),
    ("metadata", "pro"),
    ("metadata", ["pro"]),
    ("items", "si_1"),
    ("items.data", {"si_1": {}}),
    ("items.data", [1]),
    ("items.data.0.price", 9),
    ("items.data.0.current_period_start", "soon"),
    ("items.data.0.current_period_end", 10**20),
    ("current_period_end", "later"),
    ("trial_end", "soon"),
    ("trial_end", [1]),
    ("canceled_at", {}),
    ("ended_at", 1.5),
    ("ended_at", 10**30),
]
BAD_CUSTOMER_FIELDS = [("id", 5), ("id", ["cus_acme"]), ("id", {"id": 5}), ("id", "cus_" + "x" * 300)]


@pytest.fixture
def ready(client, customer, catalogue, settings):
    """Acme linked to Stripe with a known invoice and a subscription already applied, so that a
    malformed event has something it could wrongly change."""
    settings.STRIPE_TEST_WEBHOOK_SECRET = WEBHOOK_SECRET
    Customer.objects.filter(pk=customer.pk).update(stripe_id="cus_acme")
    for payload in (
        event("invoice.finalized", invoice(), created=100),
        event("customer.subscription.created", subscription(), created=100),
    ):
        response = deliver(client, payload)
        assert response.status_code == 200 and response.json()["outcome"] in ("created", "applied")
    return customer


def deliver(client, payload):
    body, header = signed(payload, secret=WEBHOOK_SECRET)
    return client.post(URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def state() -> tuple:
    return (
        list(
            Invoice.objects.order_by("id").values_list(
                "stripe_id",
                "status",
                "total",
                "amount_paid",
                "currency",
                "hosted_invoice_url",
                "product_ids",
                "stripe_updated_at",
            )
        ),
        list(
            CustomerProduct.objects.order_by("id").values_list(
                "product__product_id",
                "status",
                "stripe_subscription_id",
                "current_period_end",
                "trial_ends_at",
                "stripe_updated_at",
            )
        ),
        list(Customer.objects.order_by("id").values_list("customer_id", "stripe_id")),
        AuditEntry.objects.count(),
    )


def assert_refused_or_ignored(client, payload):
    before, events_before = state(), StripeEvent.objects.count()
    response = deliver(client, payload)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        outcome = response.json()["outcome"]
        assert outcome.startswith("ignored"), outcome
        stored = StripeEvent.objects.get(event_id=payload["id"])
        assert stored.outcome == outcome and stored.env == "sandbox"
    else:
        assert StripeEvent.objects.count() == events_before
    assert state() == before


@pytest.mark.parametrize("type", INVOICE_TYPES)
def test_malformed_invoice_events_are_ignored_and_change_nothing(client, ready, type):
    for n, (path, value) in enumerate(BAD_INVOICE_FIELDS):
        obj = mutate(invoice() | {"status": "paid", "amount_paid": 9900}, path, value)
        assert_refused_or_ignored(client, event(type, obj, created=200 + n, event_id=f"evt_{type}_{n}"))


@pytest.mark.parametrize("type", INVOICE_TYPES)
def test_a_new_invoice_with_a_null_or_missing_total_is_recorded_as_ignored_and_stores_nothing(client, ready, type):
    for n, obj in enumerate([invoice() | {"id": "in_2", "total": None}, invoice() | {"id": "in_2"}]):
        if n:
            del obj["total"]
        payload = event(type, obj, created=400 + n, event_id=f"evt_null_total_{type}_{n}")
        response = deliver(client, payload)
        reason = f"ignored: malformed {type} (total is missing)"
        assert (response.status_code, response.json()["outcome"]) == (200, reason)
        assert StripeEvent.objects.get(event_id=payload["id"]).outcome == reason
        assert not Invoice.objects.filter(stripe_id="in_2").exists()


@pytest.mark.parametrize("type", SUBSCRIPTION_TYPES)
def test_malformed_subscription_events_are_ignored_and_change_nothing(client, ready, type):
    for n, (path, value) in enumerate(BAD_SUBSCRIPTION_FIELDS):
        obj = mutate(subscription() | {"status": "canceled", "ended_at": 1_761_000_000}, path, value)
        assert_refused_or_ignored(client, event(type, obj, created=200 + n, event_id=f"evt_{type}_{n}"))


def test_malformed_customer_deleted_events_are_ignored_and_change_nothing(client, ready):
    for n, (path, value) in enumerate(BAD_CUSTOMER_FIELDS):
        obj = mutate({"id": "cus_acme", "object": "customer", "deleted": True}, path, value)
        assert_refused_or_ignored(client, event("customer.deleted", obj, created=200 + n, event_id=f"evt_cd_{n}"))


@pytest.mark.parametrize("type", [*INVOICE_TYPES, *SUBSCRIPTION_TYPES, "customer.deleted"])
@pytest.mark.parametrize(
    "envelope",
    [
        {"data": {}},
        {"data": "in_1"},
        {"data": {"object": "in_1"}},
        {"data": {"object": ["in_1"]}},
        {"data": None},
        {"livemode": "false"},
        {"livemode": None},
        {"created": True},
        {"created": 2**64},
        {"id": 12345},
        {"id": ""},
        {"type": ["invoice.paid"]},
    ],
)
def test_events_without_a_proper_envelope_are_refused_and_change_nothing(client, ready, type, envelope):
    payload = event(type, invoice(), created=300, event_id=f"evt_envelope_{type}") | envelope
    before = state()
    response = deliver(client, payload)
    assert (response.status_code, response.json()) == (400, {"error": "The body is not a Stripe event."})
    assert state() == before
    assert not StripeEvent.objects.filter(event_id=f"evt_envelope_{type}").exists()


def test_a_deeply_nested_or_non_utf8_body_is_refused(client, ready):
    for body in ('{"id": "evt_deep", "data": ' + "[" * 100_000 + "]" * 100_000 + "}",):
        response = deliver(client, body)
        assert response.status_code == 400
    raw = b'{"id": "evt_\xff"}'
    header = signed(raw.decode("latin-1"))[1]
    response = client.post(URL, raw, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400
