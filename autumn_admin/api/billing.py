"""The plan lifecycle in the API: attach (a free plan at once, a paid one through a Stripe Checkout URL or
its subscription), its preview, billing.update (plan changes and cancel actions) and its preview, the
billing portal, and the 1.2 forms (/v1/attach, /v1/cancel, /v1/customers/{id}/billing_portal)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest
from ninja import Router

from autumn_admin.api import stripe
from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, product_or_404
from autumn_admin.api.schemas.billing import (
    AttachOut,
    AttachParams,
    LegacyCancelOut,
    LegacyCancelParams,
    LegacyPortalParams,
    PortalOut,
    PortalParams,
    PreviewAttachOut,
    PreviewAttachParams,
    PreviewUpdateOut,
    UpdateOut,
    UpdateParams,
)
from autumn_admin.api.schemas.common import ERRORS, STRIPE_ERRORS
from autumn_admin.api.schemas.legacy import LegacyAttachOut, LegacyAttachParams
from autumn_admin.api.serializers.billing import preview_json
from billing.models import CustomerProduct, CustomerProductStatus
from billing.services.checkout import checkout_create
from billing.services.plans import (
    CANCEL_IMMEDIATELY,
    CHECKOUT,
    END_OF_CYCLE,
    GRANT_FREE,
    NOW,
    UNCANCEL,
    cancel_preview,
    plan_attach,
    plan_cancel,
    plan_preview,
    plan_uncancel,
)
from billing.stripe_io.client import StripeError
from billing.stripe_io.config import KEY_SETTING, is_configured
from billing.stripe_io.subscriptions import billing_portal_url

router = Router(tags=["billing"])


def _success_url(request: HttpRequest, given: str | None, *, field: str = "success_url") -> str:
    """Where Stripe sends the customer back: `given` (the request's `field`), else the deployment's default."""
    if given is None:
        return getattr(settings, "CHECKOUT_SUCCESS_URL", "") or request.build_absolute_uri("/")
    try:
        URLValidator(schemes=["http", "https"])(given)
    except ValidationError:
        raise ApiError(422, f"{field} must be an http(s) URL.", "invalid_inputs")
    return given


def _not_connected(customer, product) -> ApiError:
    return ApiError(
        400,
        f"{product.name} is a paid plan and Stripe is not connected for {customer.env}, so there "
        "is no checkout to send the customer to. Connect Stripe "
        f"({KEY_SETTING[customer.env]}) first.",
        "stripe_not_connected",
    )


def _change_plan(request: HttpRequest, customer, product, success: str) -> str | None:
    """Attach `product` as plan_preview says: at once (free, an upgrade of a Stripe subscription with
    proration, a downgrade at the period end) or through a Checkout Session. Returns the checkout URL."""
    preview = plan_preview(customer=customer, product=product)
    if preview.default_method == GRANT_FREE:  # the API does not give paid plans away
        if not is_configured(customer.env):
            raise _not_connected(customer, product)
        raise ApiError(
            400,
            f"{customer.customer_id} has no Stripe subscription to change to {product.name} at the end of the "
            "period; attach it now to get a checkout URL.",
            "invalid_inputs",
        )
    if preview.default_method != CHECKOUT:
        plan_attach(customer=customer, product=product, actor=request.api_key, method=preview.default_method)
        return None
    try:
        return checkout_create(
            customer=customer,
            product=product,
            actor=request.api_key,
            success_url=success,
            cancel_url=success,
            trial_ends_at=preview.trial_ends_at,
        )
    except StripeError as exc:
        raise stripe.stripe_failure(exc)


def _attach(
    request: HttpRequest, customer_id: str, product_id: str, version: int | None, success_url: str | None
) -> tuple[str, str | None]:
    """Returns the product id and the checkout URL (None when attached at once)."""
    customer = customer_or_404(request, customer_id)
    product = product_or_404(product_id, version)
    success = _success_url(request, success_url)
    return product.product_id, _change_plan(request, customer, product, success)


@router.post(
    "/billing.attach", response={200: AttachOut, **STRIPE_ERRORS}, operation_id="attach", summary="Attach a plan"
)
def billing_attach(request, params: AttachParams):
    """A plan replaces the customer's plan of its group; add-ons stack. A free plan, an upgrade of a Stripe
    subscription (prorated) and a downgrade (scheduled for the period end) happen at once (payment_url
    null). Any other paid plan answers with payment_url, a Stripe Checkout page carrying the customer's
    discount; the plan is attached when Stripe reports the payment. A plan's free trial, for a customer who
    never had one of it, starts at once (status trialing) when it needs no card, else through that Checkout
    page with the trial passed to Stripe. Without Stripe connected a paid plan
    answers 400 stripe_not_connected."""
    _, url = _attach(request, params.customer_id, params.plan_id, params.version, params.success_url)
    return {
        "customer_id": params.customer_id,
        "payment_url": url,
        "checkout_url": url,
        "invoice": None,
        "required_action": None,
    }


@router.post(
    "/attach",
    response={200: LegacyAttachOut, **STRIPE_ERRORS},
    operation_id="attachLegacy",
    summary="Attach a product (API 1.2)",
)
def attach_legacy(request, params: LegacyAttachParams):
    """The older form of billing.attach: product_id in, checkout_url out."""
    product_id, url = _attach(request, params.customer_id, params.product_id, params.version, params.success_url)
    if url is None:
        return {
            "success": True,
            "customer_id": params.customer_id,
            "product_ids": [product_id],
            "code": "new_product_attached",
            "message": f"Attached {product_id} to {params.customer_id}.",
            "checkout_url": None,
        }
    return {
        "success": True,
        "customer_id": params.customer_id,
        "product_ids": [product_id],
        "code": "checkout_created",
        "message": "Send the customer to checkout_url to pay.",
        "checkout_url": url,
    }


# --- previews, plan changes, cancel and the billing portal --------------------------------------------


def _customer_product(customer, plan_id: str | None) -> CustomerProduct:
    """The customer's current (or scheduled) product with this plan id: what a cancel action acts on."""
    if plan_id is None:
        raise ApiError(422, "plan_id is required with cancel_action: name the plan to cancel.", "invalid_inputs")
    found = (
        CustomerProduct.objects.filter(customer=customer, product__product_id=plan_id)
        .exclude(status=CustomerProductStatus.EXPIRED)
        .select_related("product")
        .order_by("-started_at", "-id")
        .first()
    )
    if found is None:
        raise ApiError(404, f"{customer.customer_id} has no plan {plan_id} to change.", "product_not_found")
    return found


@router.post(
    "/billing.preview_attach",
    response={200: PreviewAttachOut, **ERRORS},
    operation_id="previewAttach",
    summary="Preview an attach",
)
def billing_preview_attach(request, params: PreviewAttachParams):
    """What billing.attach would do now: the amount due today as line items, the plans coming in and
    going out, and the next cycle. Changes nothing."""
    customer = customer_or_404(request, params.customer_id)
    product = product_or_404(params.plan_id, params.version)
    return preview_json(plan_preview(customer=customer, product=product))


@router.post(
    "/billing.update", response={200: UpdateOut, **STRIPE_ERRORS}, operation_id="updateSubscription", summary="Update"
)
def billing_update(request, params: UpdateParams):
    """With cancel_action: cancel the plan now (cancel_immediately), at the end of its billing cycle
    (cancel_end_of_cycle), or reverse a pending cancellation (uncancel). Without: move the customer to
    plan_id, as billing.attach does."""
    customer = customer_or_404(request, params.customer_id)
    url = None
    if params.cancel_action is not None:
        cp = _customer_product(customer, params.plan_id)
        if params.cancel_action == UNCANCEL:
            plan_uncancel(customer=customer, customer_product=cp, actor=request.api_key)
        else:
            when = NOW if params.cancel_action == CANCEL_IMMEDIATELY else END_OF_CYCLE
            plan_cancel(customer=customer, customer_product=cp, actor=request.api_key, when=when)
    elif params.plan_id is not None:
        product = product_or_404(params.plan_id, params.version)
        url = _change_plan(request, customer, product, _success_url(request, params.success_url))
    else:
        raise ApiError(422, "Send plan_id (a plan to move to) or cancel_action.", "invalid_inputs")
    return {"customer_id": customer.customer_id, "payment_url": url, "invoice": None, "required_action": None}


@router.post(
    "/billing.preview_update",
    response={200: PreviewUpdateOut, **ERRORS},
    operation_id="previewUpdate",
    summary="Preview an update",
)
def billing_preview_update(request, params: UpdateParams):
    """What billing.update would do now. Changes nothing."""
    customer = customer_or_404(request, params.customer_id)
    if params.cancel_action is not None:
        cp = _customer_product(customer, params.plan_id)
        preview = cancel_preview(customer=customer, customer_product=cp, action=params.cancel_action)
        return {**preview_json(preview), "intent": params.cancel_action}
    if params.plan_id is None:
        raise ApiError(422, "Send plan_id (a plan to move to) or cancel_action.", "invalid_inputs")
    product = product_or_404(params.plan_id, params.version)
    return {**preview_json(plan_preview(customer=customer, product=product)), "intent": "update_plan"}


def _portal(request: HttpRequest, customer_id: str, return_url: str | None) -> dict:
    customer = customer_or_404(request, customer_id)
    back = _success_url(request, return_url, field="return_url")
    if not is_configured(customer.env):
        raise ApiError(
            400,
            f"Stripe is not connected for {customer.env}, so there is no billing portal to open. Connect Stripe "
            f"({KEY_SETTING[customer.env]}) first.",
            "stripe_not_connected",
        )
    try:
        url = billing_portal_url(customer=customer, return_url=back)
    except StripeError as exc:
        raise stripe.stripe_failure(exc)
    return {"customer_id": customer.customer_id, "url": url}


@router.post(
    "/billing.open_customer_portal",
    response={200: PortalOut, **STRIPE_ERRORS},
    operation_id="openCustomerPortal",
    summary="Open the billing portal",
)
def billing_open_customer_portal(request, params: PortalParams):
    """A Stripe billing-portal URL for the customer. Without Stripe connected: 400 stripe_not_connected."""
    return _portal(request, params.customer_id, params.return_url)


@router.post(
    "/customers/{customer_id}/billing_portal",
    response={200: PortalOut, **STRIPE_ERRORS},
    operation_id="billingPortalLegacy",
    summary="Billing portal URL (API 1.2)",
)
def billing_portal_legacy(request, customer_id: str, params: LegacyPortalParams):
    """The older form of billing.open_customer_portal."""
    return _portal(request, customer_id, params.return_url)


@router.post(
    "/cancel", response={200: LegacyCancelOut, **STRIPE_ERRORS}, operation_id="cancelLegacy", summary="Cancel (API 1.2)"
)
def cancel_legacy(request, params: LegacyCancelParams):
    """The older form of billing.update with cancel_action: at the end of the cycle unless cancel_immediately."""
    customer = customer_or_404(request, params.customer_id)
    cp = _customer_product(customer, params.product_id)
    when = NOW if params.cancel_immediately else END_OF_CYCLE
    plan_cancel(customer=customer, customer_product=cp, actor=request.api_key, when=when)
    return {"success": True, "customer_id": customer.customer_id, "product_id": params.product_id}
