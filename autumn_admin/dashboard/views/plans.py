"""A customer's plan from their page: Attach Product (previewed, then attached now, scheduled for the period
end, sent to checkout or granted for free), and each product's Cancel and Uncancel."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from autumn_admin.dashboard.customer_page import detail_url
from autumn_admin.dashboard.forms.plans import PlanAttachForm, PlanCancelForm, PlanUncancelForm
from autumn_admin.dashboard.fragments import action_done
from autumn_admin.dashboard.permissions import CHANGE_PLAN, customer_for_action
from autumn_admin.dashboard.popups import FORM_INVALID, render_popup
from billing.models import CustomerProduct, CustomerProductStatus
from billing.services.checkout import checkout_create
from billing.services.plans import (
    CANCEL_END_OF_CYCLE,
    CANCEL_IMMEDIATELY,
    CHECKOUT,
    END_OF_CYCLE,
    UNCANCEL,
    cancel_preview,
    plan_attach,
    plan_cancel,
    plan_preview,
    plan_uncancel,
)
from billing.stripe_io.client import StripeError
from billing.stripe_io.config import is_configured
from customers.errors import ServiceError
from customers.formatting import format_day

# The parts of the customer page a plan change changes.
SECTIONS = ["customer-head", "products", "features", "upcoming-invoice", "sidebar-activity"]


def _preview_or_error(form, **kwargs):
    try:
        return plan_preview(**kwargs)
    except ServiceError as e:
        form.add_service_error(e)
        return None


@require_http_methods(["GET", "POST"])
def plan_attach_view(request, customer_id: str):
    customer = customer_for_action(request, customer_id, CHANGE_PLAN)
    posted = request.method == "POST"
    form = PlanAttachForm(request.POST if posted else (request.GET or None), customer=customer)
    preview, checkout_url, status = None, None, FORM_INVALID if posted else 200
    if form.is_bound and form.is_valid():
        product, when = form.cleaned_data["product"], form.cleaned_data["when"] or None
        preview = _preview_or_error(form, customer=customer, product=product, when=when)
        if preview is not None and posted:
            method = form.cleaned_data["method"] or preview.default_method
            try:
                result = plan_attach(
                    customer=customer,
                    product=product,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    when=when,
                    method=method,
                )
                if result.method == CHECKOUT:
                    back = request.build_absolute_uri(detail_url(customer))
                    checkout_url = checkout_create(
                        customer=customer,
                        product=product,
                        actor=request.user,
                        success_url=back,
                        cancel_url=back,
                        trial_ends_at=result.preview.trial_ends_at,
                    )
                    status = 200
                else:
                    return action_done(request, customer, _attached_message(customer, result), SECTIONS)
            except StripeError as e:
                form.add_error(None, f"Stripe refused the checkout: {e.message} Nothing was changed.")
            except ServiceError as e:
                form.add_service_error(e)
    elif form.is_bound and not posted:
        form = PlanAttachForm(customer=customer)  # a GET without a product: just the picker
    return render_popup(
        request,
        "billing/plan_attach.html",
        {
            "customer": customer,
            "form": form,
            "preview": preview,
            "checkout_url": checkout_url,
            "stripe_connected": is_configured(customer.env),
        },
        status=status,
    )


def _attached_message(customer, result) -> str:
    cp, name = result.customer_product, result.preview.product.name
    if cp.status == CustomerProductStatus.SCHEDULED:
        return f"{name} is scheduled for {customer.display_name} from {cp.started_at:%-d %b %Y}."
    granted = " for free" if cp.granted_free else ""
    if cp.status == CustomerProductStatus.TRIALING and cp.trial_ends_at:
        trial = f", on a free trial until {format_day(cp.trial_ends_at)}"
        return f"{customer.display_name} is now on {name}{granted}{trial}."
    return f"{customer.display_name} is now on {name}{granted}."


def _customer_product(customer, cp_pk: int) -> CustomerProduct:
    return get_object_or_404(CustomerProduct.objects.select_related("product"), pk=cp_pk, customer=customer)


@require_http_methods(["GET", "POST"])
def plan_cancel_view(request, customer_id: str, cp_pk: int):
    customer = customer_for_action(request, customer_id, CHANGE_PLAN)
    cp = _customer_product(customer, cp_pk)
    posted = request.method == "POST"
    data = request.POST if posted else request.GET.copy()
    if not posted and "when" not in data:
        data["when"] = END_OF_CYCLE if cp.current_period_end and cp.status != "scheduled" else "now"
    form = PlanCancelForm(data)
    preview, status = None, FORM_INVALID if posted else 200
    if form.is_valid():
        when = form.cleaned_data["when"]
        action = CANCEL_END_OF_CYCLE if when == END_OF_CYCLE else CANCEL_IMMEDIATELY
        try:
            preview = cancel_preview(customer=customer, customer_product=cp, action=action)
            if posted:
                plan_cancel(
                    customer=customer,
                    customer_product=cp,
                    actor=request.user,
                    when=when,
                    reason=form.cleaned_data["reason"],
                )
                ending = "now" if action == CANCEL_IMMEDIATELY else "at the end of its billing cycle"
                return action_done(request, customer, f"{cp.product.name} is cancelled {ending}.", SECTIONS)
        except ServiceError as e:
            form.add_service_error(e)
    context = {"customer": customer, "cp": cp, "form": form, "preview": preview}
    return render_popup(request, "billing/plan_cancel.html", context, status=status)


@require_http_methods(["GET", "POST"])
def plan_uncancel_view(request, customer_id: str, cp_pk: int):
    customer = customer_for_action(request, customer_id, CHANGE_PLAN)
    cp = _customer_product(customer, cp_pk)
    posted = request.method == "POST"
    form = PlanUncancelForm(request.POST if posted else None)
    preview, status = None, FORM_INVALID if posted else 200
    try:
        preview = cancel_preview(customer=customer, customer_product=cp, action=UNCANCEL)
        if posted and form.is_valid():
            plan_uncancel(
                customer=customer, customer_product=cp, actor=request.user, reason=form.cleaned_data["reason"]
            )
            return action_done(request, customer, f"{cp.product.name} is no longer cancelling.", SECTIONS)
    except ServiceError as e:
        form.add_service_error(e)
    context = {"customer": customer, "cp": cp, "form": form, "preview": preview}
    return render_popup(request, "billing/plan_uncancel.html", context, status=status)
