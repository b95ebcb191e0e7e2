from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from autumn_admin.environment import current_env
from autumn_admin.errors import ServiceError
from autumn_admin.popups import FORM_INVALID, render_popup
from billing.services import balances_reset_due
from customers.forms import DETAIL_FIELDS, CustomerDeleteForm, DetailFieldForm, MetadataForm
from customers.fragments import page_sections
from customers.models import Customer
from customers.permissions import (
    CHANGE_CUSTOMER,
    DELETE_CUSTOMER,
    RESTORE_CUSTOMER,
    customer_for_action,
    require_perm,
)
from customers.selectors import get_customer_for
from customers.services import customer_delete, customer_restore, customer_update


def customer_list(request):
    env = current_env(request)
    q = request.GET.get("q", "").strip()
    customers = Customer.objects.alive().filter(env=env)
    if q:
        customers = customers.filter(
            Q(customer_id__icontains=q) | Q(name__icontains=q) | Q(email__icontains=q) | Q(fingerprint__icontains=q)
        )
    page = Paginator(customers.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(request, "customers/list.html", {"page": page, "q": q})


def customer_detail(request, customer_id: str):
    customer = get_customer_for(current_env(request), customer_id)
    balances_reset_due(customer=customer)
    return render(request, "customers/detail.html", {"customer": customer})


# --- actions: details, delete, restore ------------------------------------------------------------

def _details_section(request, customer, *, message: str = "") -> HttpResponse:
    """The sidebar's Details, swapped back in place of an inline form (htmx)."""
    from customers.selectors import customer_page_context

    context = customer_page_context(customer, request=request)
    html = render_to_string("customers/detail.html#sidebar-details", context, request=request)
    if message:
        html += page_sections(request, customer, ["sidebar-activity"], message=message)
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
    if request.method == "POST" and form.is_valid():
        try:
            updated = customer_update(customer=customer, actor=request.user, **form.service_kwargs())
        except ServiceError as e:
            form.add_service_error(e)
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
    return render(request, "customers/details_edit.html" + ("#field-form" if request.htmx else ""), {
        "customer": customer, "form": form, "field": field, "label": DETAIL_FIELDS[field],
    }, status=FORM_INVALID if request.method == "POST" else 200)


def _what_goes(customer: Customer) -> dict:
    from billing.models import LIVE_PRODUCT_STATUSES

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
        messages.success(request, f"Deleted {customer.display_name} ({customer.customer_id}). "
                                  "Ops can restore it from Deleted customers.")
        url = reverse("customers:list")
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return render_popup(request, "customers/delete.html", {
        "customer": customer, "form": form, "counts": _what_goes(customer),
    }, status=FORM_INVALID if request.method == "POST" else 200)


def deleted_list(request, *, error: str = "", status: int = 200):
    require_perm(request, "customers.view_customer")
    customers = (Customer.objects.deleted().filter(env=current_env(request)).select_related("deleted_by")
                 .order_by("-deleted_at", "-id"))
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
