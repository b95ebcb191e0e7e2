"""A customer's plan from their page: Attach Product (previewed, then attached now, scheduled for the period
end, sent to checkout or granted for free), and each product's Cancel and Uncancel."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from autumn_admin.dashboard.customer_page import detail_url
from autumn_admin.dashboard.forms.plans import PlanAttachForm, PlanCancelForm, PlanUncancelForm
from autumn_admin.dashboard.permissions import CHANGE_PLAN, customer_for_action
from autumn_admin.dashboard.popups import popup_action, render_popup
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
ATTACH_TEMPLATE = "billing/plan_attach.html"


@require_http_methods(["GET", "POST"])
def plan_attach_view(request, customer_id: str):
    customer = customer_for_action(request, customer_id, CHANGE_PLAN)
    posted = request.method == "POST"
    form = PlanAttachForm(request.POST if posted else (request.GET or None), customer=customer)
    if form.is_bound and not posted and not form.is_valid():
        form = PlanAttachForm(customer=customer)  # a GET without a product: just the picker
    context = {"stripe_connected": is_configured(customer.env), "checkout_url": None}

    def preview():
        if not form.is_valid():
            return None
        data = form.cleaned_data
        return plan_preview(customer=customer, product=data["product"], when=data["when"] or None)

    def attach(previewed):
        data = form.cleaned_data
        try:
            result = plan_attach(
                customer=customer,
                product=data["product"],
                actor=request.user,
                reason=data["reason"],
                when=data["when"] or None,
                method=data["method"] or previewed.default_method,
            )
            if result.method != CHECKOUT:
                return _attached_message(customer, result)
            back = request.build_absolute_uri(detail_url(customer))
            url = checkout_create(
                customer=customer,
                product=data["product"],
                actor=request.user,
                success_url=back,
                cancel_url=back,
                trial_ends_at=result.preview.trial_ends_at,
            )
        except StripeError as e:
            raise ServiceError(f"Stripe refused the checkout: {e.message} Nothing was changed.") from e
        # The link to follow, shown in the popup.
        shown = {"customer": customer, "form": form, "preview": previewed, **context, "checkout_url": url}
        return render_popup(request, ATTACH_TEMPLATE, shown)

    return popup_action(
        request,
        customer,
        form=form,
        act=attach,
        preview=preview,
        template=ATTACH_TEMPLATE,
        context=context,
        sections=SECTIONS,
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

    def action() -> str:
        return CANCEL_END_OF_CYCLE if form.cleaned_data["when"] == END_OF_CYCLE else CANCEL_IMMEDIATELY

    def preview():
        return cancel_preview(customer=customer, customer_product=cp, action=action()) if form.is_valid() else None

    def cancel(previewed) -> str:
        when, reason = form.cleaned_data["when"], form.cleaned_data["reason"]
        plan_cancel(customer=customer, customer_product=cp, actor=request.user, when=when, reason=reason)
        ending = "now" if action() == CANCEL_IMMEDIATELY else "at the end of its billing cycle"
        return f"{cp.product.name} is cancelled {ending}."

    return popup_action(
        request,
        customer,
        form=form,
        act=cancel,
        preview=preview,
        template="billing/plan_cancel.html",
        context={"cp": cp},
        sections=SECTIONS,
    )


@require_http_methods(["GET", "POST"])
def plan_uncancel_view(request, customer_id: str, cp_pk: int):
    customer = customer_for_action(request, customer_id, CHANGE_PLAN)
    cp = _customer_product(customer, cp_pk)
    form = PlanUncancelForm(request.POST if request.method == "POST" else None)

    def preview():
        return cancel_preview(customer=customer, customer_product=cp, action=UNCANCEL)

    def uncancel(previewed) -> str:
        plan_uncancel(customer=customer, customer_product=cp, actor=request.user, reason=form.cleaned_data["reason"])
        return f"{cp.product.name} is no longer cancelling."

    return popup_action(
        request,
        customer,
        form=form,
        act=uncancel,
        preview=preview,
        template="billing/plan_uncancel.html",
        context={"cp": cp},
        sections=SECTIONS,
    )
