"""The customer page, and its sections that load alone (events and invoices: "Load more", the filter)."""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from autumn_admin.dashboard.customer_lookup import CUSTOMER_ID_RE, get_customer_for
from autumn_admin.dashboard.customer_page import customer_page_context, section_context
from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.replica import reads_from_replica
from customers.models import Customer, Env


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
            # A customer of this id deleted here: when and by whom, with Restore for those who may.
            "deleted": Customer.objects.deleted()
            .filter(env=env, customer_id=customer_id)
            .select_related("deleted_by")
            .order_by("-deleted_at")
            .first()
            if CUSTOMER_ID_RE.fullmatch(customer_id)  # an id no customer can have is looked up nowhere
            else None,
        },
        status=404,
    )


@require_GET
@reads_from_replica
def customer_detail(request, customer_id: str):
    try:
        customer = get_customer_for(current_env(request), customer_id)
    except Http404 as exc:
        return _not_found(request, customer_id, exc)
    try:
        context = customer_page_context(customer, request=request)
    except BadRequest as exc:
        return render(request, "400.html", {"exception": str(exc)}, status=400)
    return render(request, "customers/detail.html", context)


# The sections that load alone: the cursor parameter of their "Load more", and the partial of the
# rows it adds (the section's own partial, of the same name, answers its filter).
SECTIONS = {"events": ("events_before", "event-rows"), "invoices": ("invoices_before", "invoice-rows")}


def _section(request, customer_id: str, section: str):
    """Load more / filter for a paged section: the rows (or the section) for htmx, else the page."""
    if not request.htmx:
        url = reverse("customers:detail", args=[customer_id])
        return redirect(f"{url}?{request.GET.urlencode()}#section-{section}" if request.GET else url)
    try:
        customer = get_customer_for(current_env(request), customer_id)
    except Http404 as exc:
        return _not_found(request, customer_id, exc)
    try:
        context = section_context(customer, section, request=request)
    except BadRequest as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    cursor_param, rows_partial = SECTIONS[section]
    template = rows_partial if request.GET.get(cursor_param) else section
    return render(request, f"customers/detail.html#{template}", context)


@require_GET
@reads_from_replica
def customer_events(request, customer_id: str):
    return _section(request, customer_id, "events")


@require_GET
@reads_from_replica
def customer_invoices(request, customer_id: str):
    return _section(request, customer_id, "invoices")
