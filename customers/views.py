import csv
import json

from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from autumn_admin.environment import current_env
from customers import selectors
from customers.models import Env

LIST_PAGE_SIZE = 50
EXPORT_CHUNK = 2000


def _list_context(request):
    env = current_env(request)
    filters = selectors.ListFilters.from_query(request.GET)
    return env, filters, selectors.customer_search(env, filters)


@require_GET
def customer_list(request):
    env, filters, customers = _list_context(request)
    page = Paginator(selectors.with_live_products(customers), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "customers/list.html", {
        "page": page, "filters": filters, "q": filters.q, "query": query.urlencode(), "env": env,
        "product_choices": selectors.product_choices(), "status_choices": selectors.STATUS_FILTERS,
        "sort_choices": selectors.SORTS,
    })


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value):
        return value


def _csv_safe(value: str) -> str:
    # Names and emails come from customers' own apps: keep spreadsheets from running them as formulas.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@require_GET
def customer_export(request):
    """The filtered list as CSV, streamed in chunks so a large export never sits in memory."""
    env, _, customers = _list_context(request)
    rows = selectors.with_live_products(customers).iterator(chunk_size=EXPORT_CHUNK)
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(["id", "name", "email", "fingerprint", "products", "status", "stripe_id",
                               "created_at", "metadata"])
        for c in rows:
            live = c.live_products
            yield writer.writerow([
                c.customer_id, _csv_safe(c.name), _csv_safe(c.email), _csv_safe(c.fingerprint),
                " ".join(cp.product.product_id for cp in live),
                selectors.customer_status(live)[0], c.stripe_id, c.created_at.isoformat(),
                json.dumps(c.metadata, ensure_ascii=False, sort_keys=True) if c.metadata else "",
            ])

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="customers-{env}-{stamp}.csv"'
    return response


def _not_found(request, customer_id: str, exc: Http404):
    """The customer page's own 404, also shown while developing with DEBUG on."""
    env = current_env(request)
    other = Env.LIVE if env == Env.SANDBOX else Env.SANDBOX
    return render(request, "404.html", {
        "exception": str(exc), "customer_id": customer_id, "env_label": Env(env).label,
        "other_env_label": Env(other).label,
    }, status=404)


@require_GET
def customer_detail(request, customer_id: str):
    try:
        customer = selectors.get_customer_for(current_env(request), customer_id)
    except Http404 as exc:
        return _not_found(request, customer_id, exc)
    try:
        context = selectors.customer_page_context(customer, request=request)
    except BadRequest as exc:
        return render(request, "400.html", {"exception": str(exc)}, status=400)
    return render(request, "customers/detail.html", context)


def _fragment(request, customer_id: str, *, section: str, cursor_param: str, partial: str, rows_partial: str):
    """Load more / filter for a paged section: the rows (or the section) for htmx, else the page."""
    if not request.htmx:
        url = f"/customers/{customer_id}/"
        return redirect(f"{url}?{request.GET.urlencode()}#section-{section}" if request.GET else url)
    try:
        customer = selectors.get_customer_for(current_env(request), customer_id)
    except Http404 as exc:
        return _not_found(request, customer_id, exc)
    try:
        context = selectors.section_context(customer, section, request=request)
    except BadRequest as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    template = rows_partial if request.GET.get(cursor_param) else partial
    return render(request, f"customers/detail.html#{template}", context)


@require_GET
def customer_events(request, customer_id: str):
    return _fragment(request, customer_id, section="events", cursor_param="events_before", partial="events",
                     rows_partial="event-rows")


@require_GET
def customer_invoices(request, customer_id: str):
    return _fragment(request, customer_id, section="invoices", cursor_param="invoices_before",
                     partial="invoices", rows_partial="invoice-rows")
