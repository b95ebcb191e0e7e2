"""invoices.void and invoices.issue_credit_note, in autumn-sdk's paths and shapes, against the fake Stripe:
what Stripe refuses is a 4xx and changes nothing here."""

from __future__ import annotations

import pytest

from billing.models import CreditNote, Invoice
from tests.test_invoice_actions import stored


@pytest.fixture
def open_invoice(linked, fake_stripe) -> Invoice:
    return stored(fake_stripe, linked, status="open", total=4900)


@pytest.fixture
def paid(linked, fake_stripe) -> Invoice:
    return stored(fake_stripe, linked, status="paid", total=9900)


def test_void_voids_an_open_invoice_and_answers_it(api, open_invoice, fake_stripe):
    response = api.post("invoices.void", {"invoice_id": f"inv_{open_invoice.pk}"})

    assert response.status_code == 200, response.content
    assert response.json()["invoice"]["status"] == "void"
    assert response.json()["invoice"]["id"] == f"inv_{open_invoice.pk}"
    assert fake_stripe.invoices[open_invoice.stripe_id]["status"] == "void"


def test_void_of_an_invoice_stripe_refuses_is_a_400_and_changes_nothing(api, open_invoice, fake_stripe):
    fake_stripe.invoices[open_invoice.stripe_id]["status"] = "paid"

    response = api.post("invoices.void", {"invoice_id": f"inv_{open_invoice.pk}"})

    assert response.status_code == 400 and "isn't open" in response.json()["message"]
    assert Invoice.objects.get(pk=open_invoice.pk).status == "open"


def test_void_of_an_unknown_invoice_is_a_404(api, db):
    assert api.post("invoices.void", {"invoice_id": "inv_999"}).status_code == 404


def test_an_invoice_of_the_other_environment_is_not_found(live_api, open_invoice):
    assert live_api.post("invoices.void", {"invoice_id": f"inv_{open_invoice.pk}"}).status_code == 404


def test_issue_credit_note_by_amount_answers_the_credit_note(api, paid, fake_stripe):
    response = api.post(
        "invoices.issue_credit_note",
        {"invoice_id": f"inv_{paid.pk}", "amount": 12.5, "reason": "order_change", "destination": "refund"},
    )

    assert response.status_code == 200, response.content
    note = response.json()["credit_note"]
    assert note["total"] == 12.5 and note["refund_amount"] == 12.5 and note["reason"] == "order_change"
    assert CreditNote.objects.get(invoice=paid).stripe_id == note["id"]
    invoices = api.post("invoices.list", {"customer_id": "acme_corp"}).json()["list"]
    assert invoices[0]["refunded_amount"] == 12.5
    assert fake_stripe.requests_to("POST", "/v1/credit_notes")[-1].params["email_type"] == "credit_note"


def test_issue_credit_note_by_line(api, paid):
    line = paid.lines[0]["id"]

    response = api.post(
        "invoices.issue_credit_note",
        {"invoice_id": f"inv_{paid.pk}", "lines": [{"id": line, "quantity": 1}], "send_email": False},
    )

    assert response.status_code == 200, response.content
    assert response.json()["credit_note"]["lines"][0]["invoice_line_item_id"] == line


def test_a_credit_note_stripe_refuses_is_a_400_and_changes_nothing(api, paid):
    response = api.post("invoices.issue_credit_note", {"invoice_id": f"inv_{paid.pk}", "amount": 5000})

    assert response.status_code == 400 and "remaining amount" in response.json()["message"]
    assert not CreditNote.objects.exists()


def test_a_credit_note_preview_is_refused_by_name(api, paid):
    response = api.post("invoices.issue_credit_note", {"invoice_id": f"inv_{paid.pk}", "amount": 1, "preview": True})

    assert response.status_code == 422 and "preview" in response.json()["message"]
    assert not CreditNote.objects.exists()
