"""An invoice in Autumn's shape: amounts in major units, as Autumn reports them."""

from __future__ import annotations

from billing.models import CreditNote, Invoice
from billing.shapes.units import major_units, ms


def invoice_json(invoice: Invoice, customer_id: str) -> dict:
    return {
        "id": f"inv_{invoice.pk}",
        "customer_id": customer_id,
        "entity_id": None,
        "plan_ids": list(invoice.product_ids or []),
        "stripe_id": invoice.stripe_id or "",
        "processor_type": "stripe",
        "status": invoice.status,
        "total": major_units(invoice.total, invoice.currency),
        "amount_paid": major_units(invoice.amount_paid, invoice.currency),
        "refunded_amount": major_units(invoice.amount_refunded, invoice.currency),
        "currency": invoice.currency,
        "created_at": ms(invoice.created_at),
        "hosted_invoice_url": invoice.hosted_invoice_url or None,
    }


def credit_note_json(note: CreditNote, invoice: Invoice) -> dict:
    def major(minor) -> float:
        return major_units(minor or 0, invoice.currency)

    return {
        "id": note.stripe_id,
        "invoice_id": f"inv_{invoice.pk}",
        "number": note.number or None,
        "status": note.status or None,
        "currency": invoice.currency,
        "subtotal": major(note.total),
        "discount_amount": 0,
        "tax_amount": 0,
        "total": major(note.total),
        "pre_payment_amount": major(note.total - note.refund_amount - note.credit_amount - note.out_of_band_amount),
        "post_payment_amount": major(note.refund_amount + note.credit_amount + note.out_of_band_amount),
        "refund_amount": major(note.refund_amount),
        "credit_amount": major(note.credit_amount),
        "out_of_band_amount": major(note.out_of_band_amount),
        "reason": note.reason or None,
        "memo": note.memo or None,
        "pdf": note.pdf or None,
        "lines": [
            {
                "invoice_line_item_id": line.get("invoice_line_item"),
                "description": line.get("description") or None,
                "quantity": line.get("quantity"),
                "amount": major(line.get("amount")),
                "discount_amount": 0,
            }
            for line in note.lines or []
        ],
    }
