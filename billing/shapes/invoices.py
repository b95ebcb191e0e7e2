"""An invoice in Autumn's shape: amounts in major units, as Autumn reports them."""

from __future__ import annotations

from billing.models import Invoice
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
        "refunded_amount": 0,
        "currency": invoice.currency,
        "created_at": ms(invoice.created_at),
        "hosted_invoice_url": invoice.hosted_invoice_url or None,
    }
