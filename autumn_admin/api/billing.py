"""Attach: a free plan is put on the customer at once; a paid one gets a Stripe Checkout URL."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest
from ninja import Router

from autumn_admin.api import stripe
from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, product_or_404
from autumn_admin.api.schemas.billing import AttachOut, AttachParams
from autumn_admin.api.schemas.common import STRIPE_ERRORS
from autumn_admin.api.schemas.legacy import LegacyAttachOut, LegacyAttachParams
from billing.models import LIVE_PRODUCT_STATUSES, CustomerProduct, Product
from billing.services.products import product_attach
from billing.stripe_io.checkout import checkout_create
from billing.stripe_io.client import StripeError
from billing.stripe_io.config import KEY_SETTING, is_configured

router = Router(tags=["billing"])


def _success_url(request: HttpRequest, given: str | None) -> str:
    if given is None:
        return getattr(settings, "CHECKOUT_SUCCESS_URL", "") or request.build_absolute_uri("/")
    try:
        URLValidator(schemes=["http", "https"])(given)
    except ValidationError:
        raise ApiError(422, "success_url must be an http(s) URL.", "invalid_inputs")
    return given


def _is_free(product: Product) -> bool:
    return product.is_free


def _attach(
    request: HttpRequest, customer_id: str, product_id: str, version: int | None, success_url: str | None
) -> tuple[str, str | None]:
    """Returns the product id and the checkout URL (None when attached at once)."""
    customer = customer_or_404(request, customer_id)
    product = product_or_404(product_id, version)
    success = _success_url(request, success_url)
    if _is_free(product):
        product_attach(customer=customer, product=product, actor=request.api_key)
        return product.product_id, None
    if CustomerProduct.objects.filter(customer=customer, product=product, status__in=LIVE_PRODUCT_STATUSES).exists():
        raise ApiError(409, f"{customer.customer_id} already has {product.name}.", "product_already_attached")
    if not is_configured(customer.env):
        raise ApiError(
            400,
            f"{product.name} is a paid plan and Stripe is not connected for {customer.env}, so there "
            "is no checkout to send the customer to. Connect Stripe "
            f"({KEY_SETTING[customer.env]}) first.",
            "stripe_not_connected",
        )
    try:
        url = checkout_create(
            customer=customer, product=product, actor=request.api_key, success_url=success, cancel_url=success
        )
    except StripeError as exc:
        raise stripe.stripe_failure(exc)
    return product.product_id, url


@router.post(
    "/billing.attach", response={200: AttachOut, **STRIPE_ERRORS}, operation_id="attach", summary="Attach a plan"
)
def billing_attach(request, params: AttachParams):
    """A free plan is attached at once (payment_url null). A paid plan answers with payment_url, a
    Stripe Checkout page carrying the customer's discount; the plan is attached when Stripe reports
    the payment. Without Stripe connected a paid plan answers 400 stripe_not_connected."""
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
