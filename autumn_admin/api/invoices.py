"""Invoices (from Stripe), newest first."""

from __future__ import annotations

from django.db.models import Q
from ninja import Router

from autumn_admin.api.lookups import customer_or_404, decode_time_cursor, time_cursor
from autumn_admin.api.schemas import ErrorOut, InvoiceListOut, ListInvoicesParams
from autumn_admin.api.serializers import invoice_json
from billing.models import Invoice

router = Router(tags=["invoices"])


@router.post(
    "/invoices.list",
    response={200: InvoiceListOut, (400, 401, 404, 409, 422): ErrorOut},
    operation_id="listInvoices",
    summary="List invoices",
)
def invoices_list(request, params: ListInvoicesParams):
    """Invoices of one customer (customer_id) or of every customer of the environment, newest first.
    Amounts are in major units (29.99), as Autumn reports them."""
    invoices = Invoice.objects.filter(customer__env=request.api_key.env, customer__deleted_at__isnull=True)
    if params.customer_id is not None:
        invoices = invoices.filter(customer=customer_or_404(request, params.customer_id))
    if params.status:
        invoices = invoices.filter(status__in=params.status)
    if params.start_cursor:
        created_at, pk = decode_time_cursor(params.start_cursor)
        invoices = invoices.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
    page = list(invoices.select_related("customer").order_by("-created_at", "-id")[: params.limit + 1])
    more = len(page) > params.limit
    page = page[: params.limit]
    return {
        "list": [invoice_json(i, i.customer.customer_id) for i in page],
        "next_cursor": time_cursor(page[-1].created_at, page[-1].pk) if more else None,
    }
