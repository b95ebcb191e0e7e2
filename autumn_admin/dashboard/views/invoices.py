"""A customer's invoice: its detail popup (every role), and Void, Refund and Issue credit note (Ops)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET, require_http_methods

from autumn_admin.dashboard.forms.invoices import InvoiceCreditForm, InvoiceRefundForm, InvoiceVoidForm
from autumn_admin.dashboard.permissions import MANAGE_INVOICE, VIEW_CUSTOMER, customer_for_action, user_can
from autumn_admin.dashboard.popups import popup_action, render_popup
from billing.models import Invoice
from billing.money import format_money
from billing.services.invoices import invoice_credit, invoice_refund, invoice_void
from billing.stripe_inbound.fields import Malformed, read_invoice_detail
from billing.stripe_io.client import StripeError
from billing.stripe_io.config import is_configured
from billing.stripe_io.invoices import invoice_retrieve
from customers.models import Customer

SECTIONS = ["invoices", "sidebar-activity"]


def _invoice(customer: Customer, pk: int) -> Invoice:
    return get_object_or_404(Invoice.objects.prefetch_related("credit_notes", "refunds"), pk=pk, customer=customer)


def _detail(invoice: Invoice, env: str) -> tuple[dict, str]:
    """What the invoice bills: stored since the webhook keeps it; for an invoice recorded before, read from
    Stripe on opening (not stored: reads change nothing). Returns it and why it is missing, if it is."""
    if invoice.lines is not None:
        return {
            "lines": invoice.lines,
            "subtotal": invoice.subtotal,
            "tax": invoice.tax,
            "discounts": invoice.discounts,
        }, ""
    if not invoice.stripe_id or not is_configured(env):
        return {}, "Its lines were not recorded, and Stripe is not connected to read them."
    try:
        return read_invoice_detail(invoice_retrieve(env=env, stripe_id=invoice.stripe_id)), ""
    except (StripeError, Malformed) as exc:
        return {}, f"Its lines could not be read from Stripe: {getattr(exc, 'message', exc)}"


@require_GET
def invoice_detail(request, customer_id: str, invoice_pk: int):
    customer = customer_for_action(request, customer_id, VIEW_CUSTOMER)
    invoice = _invoice(customer, invoice_pk)
    detail, missing = _detail(invoice, customer.env)
    context = {"customer": customer, "invoice": invoice, "detail": detail, "missing": missing, "can": user_can(request)}
    return render_popup(request, "billing/invoice_detail.html", context)


@require_http_methods(["GET", "POST"])
def invoice_void_view(request, customer_id: str, invoice_pk: int):
    customer = customer_for_action(request, customer_id, MANAGE_INVOICE)
    invoice = _invoice(customer, invoice_pk)
    form = InvoiceVoidForm(request.POST if request.method == "POST" else None, invoice=invoice)

    def void() -> str:
        data = form.cleaned_data
        invoice_void(
            invoice=invoice, actor=request.user, reason=data["reason"], expected_status=data["expected_status"]
        )
        return f"Voided the invoice of {format_money(invoice.total, invoice.currency)}."

    return popup_action(
        request,
        customer,
        form=form,
        act=void,
        template="billing/invoice_void.html",
        context={"invoice": invoice},
        sections=SECTIONS,
    )


@require_http_methods(["GET", "POST"])
def invoice_refund_view(request, customer_id: str, invoice_pk: int):
    customer = customer_for_action(request, customer_id, MANAGE_INVOICE)
    invoice = _invoice(customer, invoice_pk)
    form = InvoiceRefundForm(request.POST if request.method == "POST" else None, invoice=invoice)

    def refund() -> str:
        data = form.cleaned_data
        done = invoice_refund(
            invoice=invoice,
            actor=request.user,
            amount=data["amount"],
            reason=data["reason"],
            stripe_reason=data["stripe_reason"],
            expected_refunded=data["expected_refunded"],
        )
        return f"Refunded {format_money(done.amount, invoice.currency)} of the invoice."

    return popup_action(
        request,
        customer,
        form=form,
        act=refund,
        template="billing/invoice_refund.html",
        context={"invoice": invoice},
        sections=SECTIONS,
    )


@require_http_methods(["GET", "POST"])
def invoice_credit_view(request, customer_id: str, invoice_pk: int):
    customer = customer_for_action(request, customer_id, MANAGE_INVOICE)
    invoice = _invoice(customer, invoice_pk)
    form = InvoiceCreditForm(request.POST if request.method == "POST" else None, invoice=invoice)

    def credit() -> str:
        data = form.cleaned_data
        note = invoice_credit(
            invoice=invoice,
            actor=request.user,
            reason=data["reason"],
            expected_status=data["expected_status"],
            amount=data["amount"],
            credit_reason=data["credit_reason"],
            memo=data["memo"],
            destination=data["destination"],
        )
        return f"Issued credit note {note.number or note.stripe_id} for {format_money(note.total, invoice.currency)}."

    return popup_action(
        request,
        customer,
        form=form,
        act=credit,
        template="billing/invoice_credit.html",
        context={"invoice": invoice},
        sections=SECTIONS,
    )
