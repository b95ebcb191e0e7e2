"""`manage.py sync_stripe`: invoices and subscriptions read back from Stripe, safe to run again."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import CustomerProduct, Invoice
from billing.stripe_inbound import sync as stripe_sync
from customers.models import AuditEntry, Customer


def link(customer, fake_stripe) -> str:
    stripe_id = fake_stripe.add_customer(name=customer.name)["id"]
    Customer.objects.filter(pk=customer.pk).update(stripe_id=stripe_id)
    customer.refresh_from_db()
    return stripe_id


def sync(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("sync_stripe", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_backfill_stores_every_invoice_across_pages_and_a_second_run_duplicates_nothing(
    customer, catalogue, fake_stripe
):
    stripe_id = link(customer, fake_stripe)
    for n in range(105):  # more than one page of 100
        fake_stripe.add_invoice(customer=stripe_id, total=1000 + n, product_id="pro")
    fake_stripe.add_invoice(customer=stripe_id, status="open", total=9900, id="in_open")

    out, _ = sync()
    assert "[1/1] acme_corp (sandbox, " in out and "106 invoices (106 created)" in out
    assert Invoice.objects.filter(customer=customer).count() == 106
    pages = fake_stripe.requests_to("GET", "/v1/invoices")
    assert len(pages) == 2 and "starting_after" in pages[1].query
    stored = Invoice.objects.get(stripe_id="in_open")
    assert (stored.status, stored.total, stored.product_ids) == ("open", 9900, [])
    assert Invoice.objects.filter(product_ids=["pro"]).count() == 105

    fake_stripe.invoices["in_open"].update(status="paid", amount_paid=9900)
    out, _ = sync()
    assert "106 invoices (1 updated)" in out
    assert Invoice.objects.count() == 106
    assert Invoice.objects.get(stripe_id="in_open").status == "paid"
    assert AuditEntry.objects.filter(action="invoice.create").count() == 106
    assert AuditEntry.objects.filter(action="invoice.update").count() == 1


def test_backfill_attaches_paid_subscriptions_and_records_ended_ones(customer, catalogue, fake_stripe):
    stripe_id = link(customer, fake_stripe)
    fake_stripe.add_subscription(customer=stripe_id, product_id="pro", id="sub_pro")
    fake_stripe.add_subscription(customer=stripe_id, product_id="seats_addon", status="canceled", id="sub_old")

    out, _ = sync("--customer", "acme_corp")
    assert "2 subscriptions (1 applied, 1 ignored)" in out
    pro = CustomerProduct.objects.get(stripe_subscription_id="sub_pro")
    assert (pro.product, pro.status) == (catalogue["pro"], "active")
    assert [r.query.get("status") for r in fake_stripe.requests_to("GET", "/v1/subscriptions")] == ["all"]

    sync("--customer", "acme_corp")
    assert CustomerProduct.objects.filter(customer=customer, product=catalogue["pro"]).count() == 1


def test_backfill_can_be_interrupted_and_run_again(customer, catalogue, fake_stripe, monkeypatch):
    stripe_id = link(customer, fake_stripe)
    for _ in range(5):
        fake_stripe.add_invoice(customer=stripe_id)
    real_apply, applied = stripe_sync.apply_invoice, []

    def interrupted(obj, **kwargs):
        if len(applied) == 3:
            raise KeyboardInterrupt
        applied.append(obj["id"])
        return real_apply(obj, **kwargs)

    monkeypatch.setattr(stripe_sync, "apply_invoice", interrupted)
    with pytest.raises(CommandError, match="Interrupted at customer 1 of 1.*run the command again"):
        sync()
    assert Invoice.objects.count() == 3

    monkeypatch.setattr(stripe_sync, "apply_invoice", real_apply)
    sync()
    assert Invoice.objects.count() == 5
    assert sorted(Invoice.objects.values_list("stripe_id", flat=True)) == sorted(fake_stripe.invoices)


def test_a_customer_stripe_fails_for_is_reported_and_the_others_still_run(
    customer, globex, catalogue, fake_stripe, fake_stripe_live
):
    link(customer, fake_stripe)
    globex_stripe = link(globex, fake_stripe_live)
    fake_stripe_live.add_invoice(customer=globex_stripe)
    fake_stripe.queue_error(500, times=3)

    with pytest.raises(CommandError, match="1 of 2 customers could not be read"):
        sync()
    customer.refresh_from_db()
    assert customer.stripe_sync_error.startswith(
        "Invoices and subscriptions not read from Stripe: Stripe had an error (HTTP 500)"
    )
    assert Invoice.objects.filter(customer=globex).count() == 1

    sync("--env", "sandbox")
    customer.refresh_from_db()
    assert customer.stripe_sync_error == ""


def test_backfill_sends_a_failed_details_push_again(customer, fake_stripe):
    stripe_id = link(customer, fake_stripe)
    Customer.objects.filter(pk=customer.pk).update(
        name="Renamed Here", stripe_sync_error="Name and email not sent to Stripe: Stripe had an error (HTTP 500)."
    )
    sync()
    customer.refresh_from_db()
    assert customer.stripe_sync_error == ""
    assert fake_stripe.customers[stripe_id]["name"] == "Renamed Here"


def test_backfill_names_what_it_cannot_do(customer, fake_stripe, settings):
    with pytest.raises(CommandError, match="No customer 'nobody' linked"):
        sync("--customer", "nobody")
    with pytest.raises(CommandError, match="No customer 'acme_corp' linked"):
        sync("--customer", "acme_corp")  # exists, but has no Stripe id
    settings.STRIPE_TEST_SECRET_KEY = ""
    with pytest.raises(CommandError, match="Stripe is not connected"):
        sync()
    assert fake_stripe.requests == []


def test_a_webhook_event_older_than_the_backfill_does_not_undo_it(customer, fake_stripe):
    stripe_id = link(customer, fake_stripe)
    fake_stripe.add_invoice(customer=stripe_id, status="paid", id="in_1")
    sync()
    old = {**fake_stripe.invoices["in_1"], "status": "open", "amount_paid": 0}
    outcome = stripe_sync.process_event(
        {
            "id": "evt_old",
            "type": "invoice.finalized",
            "livemode": False,
            "created": fake_stripe.invoices["in_1"]["created"],
            "data": {"object": old},
        },
        signed_for="sandbox",
    )
    assert outcome == "stale"
    assert Invoice.objects.get().status == "paid"
