"""The delete popup: what goes with the customer, and its deletion (here, and in Stripe if asked)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from autumn_admin.dashboard.forms.delete import CustomerDeleteForm
from autumn_admin.dashboard.permissions import DELETE_CUSTOMER, customer_for_action
from autumn_admin.dashboard.popups import popup_action
from billing.models import LIVE_PRODUCT_STATUSES
from billing.stripe_io.config import is_configured
from billing.stripe_io.customers import customer_delete_everywhere
from customers.models import Customer


def _what_goes(customer: Customer) -> dict:
    """How many of the customer's products, balances, events and invoices go with it."""
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

    def delete() -> HttpResponse:
        deletion = customer_delete_everywhere(
            customer=customer,
            actor=request.user,
            reason=form.cleaned_data["reason"].strip(),
            delete_in_stripe=form.cleaned_data["also_delete_in_stripe"],
            all_or_nothing=False,
        )
        messages.success(
            request,
            f"Deleted {customer.display_name} ({customer.customer_id}). Ops can restore it from Deleted customers.",
        )
        if deletion.in_stripe:
            messages.success(request, "The customer was also deleted in Stripe.")
        elif deletion.stripe_refusal is not None:
            messages.error(request, f"Deleted here, but not in Stripe: {deletion.stripe_refusal.message}")
        # The customer page is gone: the list, with the messages.
        url = reverse("customers:list")
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)

    can_delete_in_stripe = bool(customer.stripe_id) and is_configured(customer.env)
    return popup_action(
        request,
        customer,
        form=form,
        act=delete,
        template="customers/delete.html",
        context={"counts": _what_goes(customer), "can_delete_in_stripe": can_delete_in_stripe},
    )
