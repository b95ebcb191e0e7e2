"""Invoices (from Stripe), newest first."""

from __future__ import annotations

from ninja import Router

from autumn_admin.api.lookups import of_customers, page_of
from autumn_admin.api.schemas.common import ERRORS
from autumn_admin.api.schemas.invoices import InvoiceListOut, ListInvoicesParams
from billing.models import Invoice
from billing.shapes.invoices import invoice_json

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
