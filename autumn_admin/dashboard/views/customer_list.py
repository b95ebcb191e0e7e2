"""The customers list and its CSV export, and the deleted customers with their restore."""

from __future__ import annotations

import csv
import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from autumn_admin.dashboard import customer_list as listing
from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.permissions import RESTORE_CUSTOMER, VIEW_CUSTOMER, require_perm
from autumn_admin.dashboard.replica import reads_from_replica
from customers.errors import ServiceError
from customers.models import TEXT_FIELDS, Customer
from customers.services.customers import customer_restore

LIST_PAGE_SIZE = 50
EXPORT_CHUNK = 2000
EXPORT_COLUMNS = ["id", *TEXT_FIELDS, "products", "status", "stripe_id", "created_at", "metadata"]


class FullPagePaginator(Paginator):
    """Asks the database for a full page (LIMIT per_page) even on the last page. Django's paginator
    asks for exactly the rows left, so LIMIT 1 when one customer matches a search; with a LIMIT that
    small PostgreSQL prefers walking the created-at index over the search's trigram indexes, which
    at a million customers took over a second instead of 10 ms (docs/benchmarks.md)."""

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top += self.orphans  # the last page: still a full-size LIMIT, never a smaller one
        return self._get_page(self.object_list[bottom:top], number, self)


def _list_context(request):
    env = current_env(request)
    filters = listing.ListFilters.from_query(request.GET)
    return env, filters, listing.customer_search(env, filters)


@require_GET
@reads_from_replica
def customer_list(request):
    env, filters, customers = _list_context(request)
    page = FullPagePaginator(listing.with_live_products(customers), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "customers/list.html",
        {
            "page": page,
            "filters": filters,
            "q": filters.q,
            "query": query.urlencode(),
            "env": env,
            "product_choices": listing.product_choices(),
            "status_choices": listing.STATUS_FILTERS,
            "sort_choices": listing.SORTS,
        },
    )


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value):
        return value


def _csv_safe(value: str) -> str:
    # Names and emails come from customers' own apps: keep spreadsheets from running them as formulas.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _export_row(customer: Customer) -> list[str]:
    """One customer as the export's columns (EXPORT_COLUMNS)."""
    live = customer.live_products
    return [
        customer.customer_id,
        *(_csv_safe(getattr(customer, field)) for field in TEXT_FIELDS),
        " ".join(cp.product.product_id for cp in live),
        listing.customer_status(live)[0],
        customer.stripe_id,
        customer.created_at.isoformat(),
        json.dumps(customer.metadata, ensure_ascii=False, sort_keys=True) if customer.metadata else "",
    ]


@require_GET
@reads_from_replica
def customer_export(request):
    """The filtered list as CSV, streamed in chunks so a large export never sits in memory."""
    env, _, customers = _list_context(request)
    rows = listing.with_live_products(customers).iterator(chunk_size=EXPORT_CHUNK)
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(EXPORT_COLUMNS)
        for customer in rows:
            yield writer.writerow(_export_row(customer))

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="customers-{env}-{stamp}.csv"'
    return response


def deleted_list(request, *, error: str = "", status: int = 200):
    require_perm(request, VIEW_CUSTOMER)
    customers = (
        Customer.objects.deleted()
        .filter(env=current_env(request))
        .select_related("deleted_by")
        .order_by("-deleted_at", "-id")
    )
    page = Paginator(customers, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "customers/deleted_list.html", {"page": page, "error": error}, status=status)


@require_POST
def customer_restore_view(request, pk: int):
    require_perm(request, RESTORE_CUSTOMER)
    customer = get_object_or_404(Customer.objects.deleted(), pk=pk, env=current_env(request))
    try:
        customer_restore(customer=customer, actor=request.user)
    except ServiceError as e:
        return deleted_list(request, error=e.message, status=e.status)
    messages.success(request, f"Restored {customer.display_name} ({customer.customer_id}).")
    return redirect("customers:detail", customer.customer_id)
