"""Voiding, refunding and crediting invoices through billing/services/invoices.py, against the fake Stripe:
what Stripe was asked, what got stored and audited, and what Stripe's refusals leave unchanged."""

from __future__ import annotations

import pytest

from billing.models import CreditNote, Invoice, InvoiceRefund
from billing.services.invoices import CreditLine, invoice_credit, invoice_refund, invoice_void
from billing.stripe_inbound.sync import apply_invoice
from customers.audit import AuditAction
from customers.errors import Conflict, ServiceError
from customers.models import AuditEntry


def stored(fake, customer, **fields) -> Invoice:
    """An invoice made in the fake Stripe and recorded as its webhook would record it."""
    obj = fake.add_invoice(customer=customer.stripe_id, **fields)
    apply_invoice(obj, env="sandbox", created=obj["created"], reason="test")
    return Invoice.objects.get(stripe_id=obj["id"])


@pytest.fixture
def paid(linked, fake_stripe) -> Invoice:
    return stored(fake_stripe, linked, status="paid", total=9900)


@pytest.fixture
def open_invoice(linked, fake_stripe) -> Invoice:
    return stored(fake_stripe, linked, status="open", total=4900)


def test_the_webhook_stores_an_invoices_lines(paid):
    assert paid.lines == [{"id": paid.lines[0]["id"], "description": "1 × Subscription", "quantity": 1, "amount": 9900}]


def test_a_partial_refund_refunds_the_payment_in_stripe_and_is_recorded_once(paid, fake_stripe, ops):
    refund = invoice_refund(invoice=paid, actor=ops, amount=2500, reason="outage credit", expected_refunded=0)

    paid.refresh_from_db()
    assert paid.amount_refunded == 2500 and paid.status_label == "Partially refunded"
    assert refund.amount == 2500 and refund.stripe_id in fake_stripe.refunds
    assert fake_stripe.payment_of(paid.stripe_id)["amount_refunded"] == 2500
    sent = fake_stripe.requests_to("POST", "/v1/refunds")[-1].params
    assert sent["amount"] == "2500" and sent["reason"] == "requested_by_customer"
    entry = AuditEntry.objects.get(action=AuditAction.INVOICE_REFUND)
    assert entry.actor_user == ops and entry.reason == "outage credit"


def test_refunding_the_rest_makes_it_fully_refunded(paid, ops):
    invoice_refund(invoice=paid, actor=ops, amount=2500, reason="part", expected_refunded=0)
    invoice_refund(invoice=paid, actor=ops, amount=7400, reason="the rest", expected_refunded=2500)

    paid.refresh_from_db()
    assert paid.amount_refunded == 9900 and paid.status_label == "Fully refunded"
    assert InvoiceRefund.objects.filter(invoice=paid).count() == 2


def test_a_refund_on_figures_that_changed_since_is_refused(paid, fake_stripe, ops):
    invoice_refund(invoice=paid, actor=ops, amount=100, reason="part", expected_refunded=0)

    with pytest.raises(Conflict):
        invoice_refund(invoice=paid, actor=ops, amount=100, reason="again", expected_refunded=0)
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 1


def test_a_refund_above_what_is_left_is_refused_before_stripe(paid, fake_stripe, ops):
    with pytest.raises(ServiceError, match="At most"):
        invoice_refund(invoice=paid, actor=ops, amount=10000, reason="too much", expected_refunded=0)
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []


def test_stripe_refusing_a_refund_changes_nothing_here(paid, fake_stripe, ops):
    fake_stripe.payment_of(paid.stripe_id)["amount_refunded"] = 9900  # refunded in Stripe's dashboard meanwhile
    trail = AuditEntry.objects.count()

    with pytest.raises(ServiceError) as refused:
        invoice_refund(invoice=paid, actor=ops, amount=100, reason="x", expected_refunded=0)

    assert refused.value.status == 400 and refused.value.code == "charge_already_refunded"
    paid.refresh_from_db()
    assert paid.amount_refunded == 0 and not InvoiceRefund.objects.exists()
    assert AuditEntry.objects.count() == trail


def test_voiding_an_open_invoice_voids_it_in_stripe_then_here(open_invoice, fake_stripe, ops):
    invoice_void(invoice=open_invoice, actor=ops, reason="billed twice")

    open_invoice.refresh_from_db()
    assert open_invoice.status == "void" and fake_stripe.invoices[open_invoice.stripe_id]["status"] == "void"
    assert AuditEntry.objects.get(action=AuditAction.INVOICE_VOID).reason == "billed twice"


def test_voiding_an_invoice_paid_since_it_was_shown_is_refused(open_invoice, fake_stripe, ops):
    Invoice.objects.filter(pk=open_invoice.pk).update(status="paid")

    with pytest.raises(Conflict, match="paid now"):
        invoice_void(invoice=open_invoice, actor=ops, reason="x", expected_status="open")
    assert fake_stripe.requests_to("POST", "/v1/invoices/*/void") == []


def test_stripe_refusing_a_void_changes_nothing_here(open_invoice, fake_stripe, ops):
    fake_stripe.invoices[open_invoice.stripe_id]["status"] = "paid"  # paid in Stripe, the webhook not here yet

    with pytest.raises(ServiceError, match="isn't open") as refused:
        invoice_void(invoice=open_invoice, actor=ops, reason="x")

    assert refused.value.status == 400
    open_invoice.refresh_from_db()
    assert open_invoice.status == "open"
    assert not AuditEntry.objects.filter(action=AuditAction.INVOICE_VOID).exists()


def test_a_credit_note_on_an_open_invoice_is_issued_and_listed_under_it(open_invoice, fake_stripe, ops):
    note = invoice_credit(
        invoice=open_invoice,
        actor=ops,
        reason="goodwill",
        expected_status="open",
        amount=1000,
        credit_reason="order_change",
        memo="Sorry",
    )

    assert list(open_invoice.credit_notes.all()) == [note]
    assert note.total == 1000 and note.reason == "order_change" and note.memo == "Sorry"
    assert fake_stripe.credit_notes[note.stripe_id]["invoice"] == open_invoice.stripe_id
    assert AuditEntry.objects.get(action=AuditAction.INVOICE_CREDIT).actor_user == ops


def test_a_credit_note_by_line_refunding_a_paid_invoice_counts_as_refunded(paid, fake_stripe, ops):
    line = paid.lines[0]["id"]

    note = invoice_credit(
        invoice=paid,
        actor=ops,
        reason="returned",
        expected_status="paid",
        lines=[CreditLine(id=line, quantity=1)],
        destination="refund",
    )

    assert note.total == 9900 and note.refund_amount == 9900
    sent = fake_stripe.requests_to("POST", "/v1/credit_notes")[-1].params
    assert sent["lines"] == [{"type": "invoice_line_item", "invoice_line_item": line, "quantity": "1"}]
    assert sent["refund_amount"] == "9900"
    paid.refresh_from_db()
    assert paid.status_label == "Fully refunded"


def test_stripe_refusing_a_credit_note_changes_nothing_here(open_invoice, fake_stripe, ops):
    with pytest.raises(ServiceError, match="at most the invoice's remaining amount") as refused:
        invoice_credit(invoice=open_invoice, actor=ops, reason="x", expected_status="open", amount=999999)

    assert refused.value.status == 400
    assert not CreditNote.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.INVOICE_CREDIT).exists()


def test_an_amount_and_lines_together_are_refused(open_invoice, ops):
    with pytest.raises(ServiceError, match="not both"):
        invoice_credit(
            invoice=open_invoice,
            actor=ops,
            reason="x",
            expected_status="open",
            amount=100,
            lines=[CreditLine(id="il_x", quantity=1)],
        )
