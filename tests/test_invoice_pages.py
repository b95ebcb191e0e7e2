"""The invoice popups of the customer page over HTTP, against the fake Stripe: the detail every role sees, and
Ops' refund, void and credit note, with what Stripe refuses shown in the form."""

from __future__ import annotations

import pytest

from billing.models import CreditNote, Invoice
from tests.helpers import DashboardClient, page_text
from tests.test_invoice_actions import stored

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def paid(linked, fake_stripe) -> Invoice:
    return stored(fake_stripe, linked, status="paid", total=9900)


@pytest.fixture
def ops_browser(ops) -> DashboardClient:
    client = DashboardClient()
    client.force_login(ops)
    return client


@pytest.mark.parametrize("role", ["viewer", "support", "ops"])
def test_every_role_sees_an_invoices_lines_total_and_links(request, paid, role):
    client = DashboardClient()
    client.force_login(request.getfixturevalue(role))

    text = page_text(client.get(f"/customers/acme_corp/invoices/{paid.pk}/", **HTMX))

    assert "1 × Subscription" in text and "$99.00" in text and "Paid" in text
    assert f"https://invoice.stripe.com/i/{paid.stripe_id}" in text and "/pdf" in text
    assert ("Issue credit note" in text) is (role == "ops")


def test_an_invoice_recorded_before_its_lines_were_kept_reads_them_from_stripe_on_opening(paid, ops_browser):
    Invoice.objects.filter(pk=paid.pk).update(lines=None)

    text = page_text(ops_browser.get(f"/customers/acme_corp/invoices/{paid.pk}/"))

    assert "1 × Subscription" in text
    assert Invoice.objects.get(pk=paid.pk).lines is None  # read, not stored


def test_ops_refunds_part_of_an_invoice_and_the_list_says_partially_refunded(paid, ops_browser):
    response = ops_browser.post(
        f"/customers/acme_corp/invoices/{paid.pk}/refund/",
        {
            "amount": "25.00",
            "stripe_reason": "requested_by_customer",
            "reason": "outage",
            "expected_status": "paid",
            "expected_refunded": "0",
        },
    )

    assert response.status_code == 302
    text = page_text(ops_browser.get("/customers/acme_corp/"))
    assert "Partially refunded" in text and "Refunded $25.00 of the invoice." in text


def test_a_refund_stripe_refuses_is_shown_in_the_form_and_changes_nothing(paid, fake_stripe, ops_browser):
    fake_stripe.payment_of(paid.stripe_id)["amount_refunded"] = 9900

    response = ops_browser.post(
        f"/customers/acme_corp/invoices/{paid.pk}/refund/",
        {
            "amount": "25.00",
            "stripe_reason": "requested_by_customer",
            "reason": "outage",
            "expected_status": "paid",
            "expected_refunded": "0",
        },
        **HTMX,
    )

    assert response.status_code == 422
    assert "has already been refunded" in page_text(response)
    assert Invoice.objects.get(pk=paid.pk).amount_refunded == 0


def test_a_void_of_an_invoice_paid_since_it_was_shown_is_refused_in_the_form(linked, fake_stripe, ops_browser):
    invoice = stored(fake_stripe, linked, status="open", total=4900)
    Invoice.objects.filter(pk=invoice.pk).update(status="paid")

    response = ops_browser.post(
        f"/customers/acme_corp/invoices/{invoice.pk}/void/", {"reason": "x", "expected_status": "open"}, **HTMX
    )

    assert response.status_code == 422 and "paid now" in page_text(response)
    assert fake_stripe.requests_to("POST", "/v1/invoices/*/void") == []


def test_a_credit_note_is_listed_under_its_invoice(paid, ops_browser):
    ops_browser.post(
        f"/customers/acme_corp/invoices/{paid.pk}/credit/",
        {
            "amount": "5.00",
            "credit_reason": "order_change",
            "memo": "",
            "destination": "customer_balance",
            "reason": "goodwill",
            "expected_status": "paid",
        },
    )

    note = CreditNote.objects.get(invoice=paid)
    text = page_text(ops_browser.get("/customers/acme_corp/"))
    assert f"Credit note {note.number} · $5.00 · Order change" in text


def test_support_may_not_refund(paid, support):
    client = DashboardClient()
    client.force_login(support)

    assert client.get(f"/customers/acme_corp/invoices/{paid.pk}/refund/").status_code == 403
