"""Invoices (from Stripe), newest first."""

from __future__ import annotations

from decimal import Decimal

from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import of_customers, page_of
from autumn_admin.api.schemas.common import ERRORS
from autumn_admin.api.schemas.invoices import (
    CreditNoteResponseOut,
    InvoiceListOut,
    InvoiceResponseOut,
    IssueCreditNoteParams,
    ListInvoicesParams,
    VoidInvoiceParams,
)
from billing.models import Invoice
from billing.money import decimals_of
from billing.services.invoices import CreditLine, invoice_credit, invoice_void
from billing.shapes.invoices import credit_note_json, invoice_json

router = Router(tags=["invoices"])


@router.post(
    "/invoices.list",
    response={200: InvoiceListOut, **ERRORS},
    operation_id="listInvoices",
    summary="List invoices",
)
def invoices_list(request, params: ListInvoicesParams):
    """Invoices of one customer (customer_id) or of every customer of the environment, newest first.
    Amounts are in major units (29.99), as Autumn reports them."""
    invoices = of_customers(request, Invoice.objects.all(), params.customer_id)
    if params.status:
        invoices = invoices.filter(status__in=params.status)
    page = page_of(
        invoices.select_related("customer"), time_field="created_at", cursor=params.start_cursor, limit=params.limit
    )
    return {"list": [invoice_json(i, i.customer.customer_id) for i in page.items], "next_cursor": page.next_cursor}


def _invoice_or_404(request, invoice_id: str) -> Invoice:
    """An invoice (`inv_<n>`) of a live customer of the key's environment."""
    number = invoice_id.removeprefix("inv_")
    invoice = None
    if invoice_id.startswith("inv_") and number.isdigit() and len(number) < 19:
        invoice = of_customers(request, Invoice.objects.select_related("customer"), None).filter(pk=number).first()
    if invoice is None:
        raise ApiError(404, f"Invoice {invoice_id} not found", "invoice_not_found")
    return invoice


def _minor(value, invoice: Invoice, field: str) -> int:
    """Major units (12.5) as the invoice currency's minor units; 422 for a fraction of the smallest unit."""
    minor = Decimal(str(value)) * (10 ** decimals_of(invoice.currency))
    if minor != minor.to_integral_value():
        raise ApiError(422, f"{field} has more decimals than {invoice.currency.upper()} has", "invalid_inputs")
    return int(minor)


@router.post(
    "/invoices.void",
    response={200: InvoiceResponseOut, **ERRORS},
    operation_id="voidInvoice",
    summary="Void an invoice",
)
def invoices_void(request, params: VoidInvoiceParams):
    """Void an open invoice, in Stripe first: what Stripe refuses is a 4xx and changes nothing here."""
    invoice = _invoice_or_404(request, params.invoice_id)
    voided = invoice_void(
        invoice=invoice, actor=request.api_key, reason="invoices.void", expected_status=invoice.status
    )
    return {"invoice": invoice_json(voided, voided.customer.customer_id)}


@router.post(
    "/invoices.issue_credit_note",
    response={200: CreditNoteResponseOut, **ERRORS},
    operation_id="issueCreditNote",
    summary="Issue a credit note",
)
def invoices_issue_credit_note(request, params: IssueCreditNoteParams):
    """A Stripe credit note on an open or paid invoice: an amount or lines, in major units."""
    invoice = _invoice_or_404(request, params.invoice_id)
    lines = None
    if params.lines is not None:
        lines = [
            CreditLine(
                id=line.id,
                quantity=line.quantity,
                amount=None if line.amount is None else _minor(line.amount, invoice, f"lines.{i}.amount"),
            )
            for i, line in enumerate(params.lines)
        ]
    note = invoice_credit(
        invoice=invoice,
        actor=request.api_key,
        reason="invoices.issue_credit_note" + (f": {params.memo}" if params.memo else ""),
        expected_status=invoice.status,
        amount=None if params.amount is None else _minor(params.amount, invoice, "amount"),
        lines=lines,
        credit_reason=params.reason or "",
        memo=params.memo or "",
        destination=params.destination,
        send_email=params.send_email,
    )
    return {"credit_note": credit_note_json(note, invoice)}
