"""The customers list and its CSV export, and the deleted customers with their restore."""

from __future__ import annotations

import csv
import json
from urllib.parse import parse_qsl

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from autumn_admin.dashboard import customer_list as listing
from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.forms.saved_views import SavedViewForm
from autumn_admin.dashboard.permissions import RESTORE_CUSTOMER, SHARE_VIEW, VIEW_CUSTOMER, require_perm
from autumn_admin.dashboard.replica import reads_from_replica
from autumn_admin.dashboard.selection import Selection
from billing.services.bulk import ACTIONS as BULK_ACTIONS
from customers.errors import ServiceError
from customers.models import TEXT_FIELDS, Customer, SavedView
from customers.services.customers import customer_restore
from customers.services.saved_views import saved_view_create, saved_view_delete

LIST_PAGE_SIZE = 50
EXPORT_CHUNK = 2000
EXPORT_COLUMNS = ["id", *TEXT_FIELDS, "products", "status", "stripe_id", "created_at", "metadata"]


class ListPage:
    """One page of the list without counting every match: the rows are read with one more than a page (so
    "Next" is known), and the count is capped (`listing.capped_count`), so a million customers cost no full
    COUNT(*) on each load. `rows(offset, limit)`, if given, reads the rows in the queryset's order another way
    (a feature sort's index walk)."""

    def __init__(self, qs, number: str | None, per_page: int = LIST_PAGE_SIZE, rows=None):
        try:
            self.number = max(1, min(int(number or 1), 10_000))
        except ValueError:
            self.number = 1
        self.count, self.more = listing.capped_count(qs)
        if not self.more and self.count:
            self.number = min(self.number, (self.count - 1) // per_page + 1)  # past the end: the last page
        offset = (self.number - 1) * per_page
        # Always a full-size LIMIT (see docs/benchmarks.md).
        rows = listing.read_page(
            (lambda: rows(offset, per_page + 1)) if rows else (lambda: list(qs[offset : offset + per_page + 1])),
            qs.db,  # the replica's, if there is one: chosen before the savepoint, which the router keeps on the primary
        )
        self.object_list = rows[:per_page]
        self.has_next = len(rows) > per_page
        self.has_previous = self.number > 1
        self.start_index = offset + 1 if self.object_list else 0
        self.end_index = offset + len(self.object_list)
        self.num_pages = None if self.more else max(1, (self.count - 1) // per_page + 1)
        self.has_other_pages = self.has_next or self.has_previous

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def list_page(env: str, filters, customers, number: str | None) -> ListPage:
    """The list's page of `customers` (`listing.customer_search`): a feature sort reads its rows from the
    plan balances' index; filters that few customers match read those customers' ids first."""
    if filters.sorted_by_feature:
        return ListPage(listing.with_live_products(customers), number, rows=listing.feature_sorted_rows(env, filters))
    return ListPage(listing.with_live_products(listing.narrowed(customers, filters)), number)


def _list_context(request):
    env = current_env(request)
    filters = listing.ListFilters.from_query(request.GET)
    return env, filters, listing.customer_search(env, filters)


@require_GET
@reads_from_replica
def customer_list(request):
    env, filters, customers = _list_context(request)
    page = list_page(env, filters, customers, request.GET.get("page"))
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
            "feature_choices": listing.feature_choices(),
            "status_choices": listing.STATUS_FILTERS,
            "balance_choices": listing.BALANCE_FILTERS,
            "sort_choices": listing.SORTS,
            "feature_sorts": listing.FEATURE_SORTS,
            "saved_views": saved_views_for(request.user, env, current=query.urlencode()),
            "bulk_actions": BULK_ACTIONS,
        },
        status=400 if filters.errors else 200,
    )


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value):
        return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: str) -> str:
    """A text cell a spreadsheet shows as text: ids, names, emails and metadata come from customers' own apps,
    and a cell starting like a formula (OWASP's =, +, -, @, tab, CR) would be run as one (`-1-1` opens as
    −2). A leading single quote makes it text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _export_columns(filters) -> list[str]:
    """EXPORT_COLUMNS, and the balance a balance filter matched (as on the list) when one names a feature."""
    if not filters.shows_matched_balance:
        return EXPORT_COLUMNS
    feature = filters.feature_obj.feature_id
    return [*EXPORT_COLUMNS, *(_csv_safe(f"{feature}_{name}") for name in ("remaining", "granted", "remaining_pct"))]


def _matched_balance_cells(customer: Customer) -> list[str]:
    """The matched balance's remaining, granted and remaining % of granted: numbers (a negative one stays a
    number), "unlimited" for an unlimited balance."""
    if customer.matched_unlimited:
        return ["unlimited", "", ""]
    return [
        "" if value is None else f"{value.normalize():f}"
        for value in (customer.matched_remaining, customer.matched_granted, customer.matched_pct)
    ]


def _export_row(customer: Customer, filters) -> list[str]:
    """One customer as the export's columns (`_export_columns`)."""
    live = listing.live_products(customer)
    row = [
        _csv_safe(customer.customer_id),
        *(_csv_safe(getattr(customer, field)) for field in TEXT_FIELDS),
        _csv_safe(" ".join(cp.product.product_id for cp in live)),
        listing.customer_status(live)[0],
        _csv_safe(customer.stripe_id),
        customer.created_at.isoformat(),
        _csv_safe(json.dumps(customer.metadata, ensure_ascii=False, sort_keys=True)) if customer.metadata else "",
    ]
    if filters.shows_matched_balance:
        row += _matched_balance_cells(customer)
    return row


def _same_query(a: str, b: str) -> bool:
    """Two list queries that show the same list: the same non-empty values, in any order."""
    return sorted((k, v) for k, v in parse_qsl(a) if v) == sorted((k, v) for k, v in parse_qsl(b) if v)


def saved_views_for(user, env: str, current: str | None = None) -> dict[str, list[SavedView]]:
    """The person's own views of this environment, and those the team shares; the one whose filters are the
    list's `current` query is marked active."""
    views = SavedView.objects.filter(env=env).filter(Q(owner=user) | Q(shared=True)).select_related("owner")
    mine, team = [], []
    for view in views:
        view.active = current is not None and _same_query(view.query, current)
        (mine if view.owner_id == user.pk else team).append(view)
    return {"mine": mine, "team": team}


@require_POST
def saved_view_save(request):
    """Name the list's current filters (the query string posted with the name)."""
    require_perm(request, VIEW_CUSTOMER)
    form = SavedViewForm(request.POST)
    if request.POST.get("shared", "") != "":
        require_perm(request, SHARE_VIEW)  # asking to share at all needs the permission
    query = request.POST.get("query", "")
    back = f"{reverse('customers:list')}?{query}" if query and "\x00" not in query else reverse("customers:list")
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(back)
    try:
        view = saved_view_create(
            owner=request.user,
            env=current_env(request),
            name=form.cleaned_data["name"],
            query=form.cleaned_data["query"],
            shared=form.cleaned_data["shared"],
        )
    except ServiceError as e:
        messages.error(request, e.message)
        return redirect(back)
    messages.success(request, f"Saved the view “{view.name}”" + (", shared with the team." if view.shared else "."))
    return redirect(f"{reverse('customers:list')}?{view.query}" if view.query else "customers:list")


@require_POST
def saved_view_delete_view(request, pk: int):
    view = get_object_or_404(SavedView, pk=pk, owner=request.user)  # only one's own
    saved_view_delete(view=view)
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect("customers:list")


@require_GET
@reads_from_replica
def customer_export(request):
    """The filtered list (or the rows ticked on it) as CSV, streamed in chunks so a large export never sits
    in memory."""
    env, filters, customers = _list_context(request)
    if filters.errors:
        return HttpResponseBadRequest("; ".join(filters.errors), content_type="text/plain; charset=utf-8")
    selection = Selection.from_data(request.GET)
    if selection.ids and not selection.all_matching:
        customers = customers.filter(pk__in=selection.ids)
    rows = listing.with_live_products(customers).iterator(chunk_size=EXPORT_CHUNK)
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(_export_columns(filters))
        for customer in rows:
            yield writer.writerow(_export_row(customer, filters))

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
