import csv
import json

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from autumn_admin.dashboard import customer_page as selectors
from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.forms.customers import DETAIL_FIELDS, CustomerDeleteForm, DetailFieldForm, MetadataForm
from autumn_admin.dashboard.fragments import page_sections
from autumn_admin.dashboard.permissions import (
    CHANGE_CUSTOMER,
    DELETE_CUSTOMER,
    RESTORE_CUSTOMER,
    customer_for_action,
    require_perm,
)
from autumn_admin.dashboard.popups import CONFLICT, FORM_INVALID, render_popup
from billing.models import LIVE_PRODUCT_STATUSES
from billing.stripe_io import customers as stripe_gateway
from customers.errors import ServiceError
from customers.models import Customer, Env
from customers.services.customers import customer_delete, customer_restore, customer_update
from customers.stale import StaleForm

LIST_PAGE_SIZE = 50
EXPORT_CHUNK = 2000


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
    filters = selectors.ListFilters.from_query(request.GET)
    return env, filters, selectors.customer_search(env, filters)


@require_GET
def customer_list(request):
    env, filters, customers = _list_context(request)
    page = FullPagePaginator(selectors.with_live_products(customers), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
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
            "product_choices": selectors.product_choices(),
            "status_choices": selectors.STATUS_FILTERS,
            "sort_choices": selectors.SORTS,
        },
    )


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
        yield writer.writerow(
            ["id", "name", "email", "fingerprint", "products", "status", "stripe_id", "created_at", "metadata"]
        )
        for c in rows:
            live = c.live_products
            yield writer.writerow(
                [
                    c.customer_id,
                    _csv_safe(c.name),
                    _csv_safe(c.email),
                    _csv_safe(c.fingerprint),
                    " ".join(cp.product.product_id for cp in live),
                    selectors.customer_status(live)[0],
                    c.stripe_id,
                    c.created_at.isoformat(),
                    json.dumps(c.metadata, ensure_ascii=False, sort_keys=True) if c.metadata else "",
                ]
            )

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="customers-{env}-{stamp}.csv"'
    return response


def _not_found(request, customer_id: str, exc: Http404):
    """The customer page's own 404, also shown while developing with DEBUG on."""
    env = current_env(request)
    other = Env.LIVE if env == Env.SANDBOX else Env.SANDBOX
    return render(
        request,
        "404.html",
        {
            "exception": str(exc),
            "customer_id": customer_id,
            "env_label": Env(env).label,
            "other_env_label": Env(other).label,
        },
        status=404,
    )


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
        url = reverse("customers:detail", args=[customer_id])
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
    return _fragment(
        request,
        customer_id,
        section="events",
        cursor_param="events_before",
        partial="events",
        rows_partial="event-rows",
    )


@require_GET
def customer_invoices(request, customer_id: str):
    return _fragment(
        request,
        customer_id,
        section="invoices",
        cursor_param="invoices_before",
        partial="invoices",
        rows_partial="invoice-rows",
    )


# --- actions: details, delete, restore ------------------------------------------------------------


def _details_section(request, customer, *, message: str = "") -> HttpResponse:
    """The sidebar's Details, swapped back in place of an inline form (htmx)."""
    context = selectors.customer_page_context(customer, request=request)
    html = render_to_string("customers/detail.html#sidebar-details", context, request=request)
    if message:
        html += page_sections(
            request, customer, ["customer-head", "sidebar-activity"], message=message, context=context
        )
    return retarget(reswap(HttpResponse(html), "outerHTML"), "#section-sidebar-details")


@require_http_methods(["GET", "POST"])
def details_edit(request, customer_id: str):
    customer = customer_for_action(request, customer_id, CHANGE_CUSTOMER)
    field = request.GET.get("field", "")
    if field not in DETAIL_FIELDS:  # "Cancel" of an inline form
        return _details_section(request, customer) if request.htmx else redirect("customers:detail", customer_id)
    if field == "metadata":
        form = MetadataForm(request.POST if request.method == "POST" else None, customer=customer)
    else:
        form = DetailFieldForm(request.POST if request.method == "POST" else None, field=field, customer=customer)
    status = FORM_INVALID if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            updated = customer_update(customer=customer, actor=request.user, **form.service_kwargs())
        except ServiceError as e:
            form.add_service_error(e)
            if isinstance(e, StaleForm):  # changed since it was opened: show the current value
                status = CONFLICT
                customer.refresh_from_db()
                form.based_on(customer)
        else:
            what = "the ID" if field == "id" else DETAIL_FIELDS[field].lower()
            message = f"Updated {what} of {updated.display_name}."
            if field == "id" and updated.customer_id != customer_id:
                # The page lives at the new id now.
                messages.success(request, message)
                url = reverse("customers:detail", args=[updated.customer_id])
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
            if request.htmx:
                return _details_section(request, updated, message=message)
            messages.success(request, message)
            return redirect("customers:detail", updated.customer_id)
    return render(
        request,
        "customers/details_edit.html" + ("#field-form" if request.htmx else ""),
        {
            "customer": customer,
            "form": form,
            "field": field,
            "label": DETAIL_FIELDS[field],
        },
        status=status,
    )


def _what_goes(customer: Customer) -> dict:

    return {
        "products": customer.customer_products.filter(status__in=LIVE_PRODUCT_STATUSES).count(),
        "balances": customer.balances.count(),
        "events": customer.events.count(),
        "invoices": customer.invoices.count(),
    }


@require_http_methods(["GET", "POST"])
def customer_delete_view(request, customer_id: str):
    customer = customer_for_action(request, customer_id, DELETE_CUSTOMER)
    form = CustomerDeleteForm(request.POST if request.method == "POST" else None, customer=customer)
    if request.method == "POST" and form.is_valid():
        customer_delete(customer=customer, actor=request.user, reason=form.cleaned_data["reason"].strip())
        messages.success(
            request,
            f"Deleted {customer.display_name} ({customer.customer_id}). Ops can restore it from Deleted customers.",
        )
        if form.cleaned_data["also_delete_in_stripe"] and customer.stripe_id:
            try:
                stripe_gateway.customer_delete_in_stripe(customer=customer, actor=request.user)
                messages.success(request, "The customer was also deleted in Stripe.")
            except stripe_gateway.StripeError as e:
                messages.error(request, f"Deleted here, but not in Stripe: {e.message}")
        url = reverse("customers:list")
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return render_popup(
        request,
        "customers/delete.html",
        {
            "customer": customer,
            "form": form,
            "counts": _what_goes(customer),
            "can_delete_in_stripe": bool(customer.stripe_id) and stripe_gateway.is_configured(customer.env),
        },
        status=FORM_INVALID if request.method == "POST" else 200,
    )


def deleted_list(request, *, error: str = "", status: int = 200):
    require_perm(request, "customers.view_customer")
    customers = (
        Customer.objects.deleted()
        .filter(env=current_env(request))
        .select_related("deleted_by")
        .order_by("-deleted_at", "-id")
    )
    page = Paginator(customers, 50).get_page(request.GET.get("page"))
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
