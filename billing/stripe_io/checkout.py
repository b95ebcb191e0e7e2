"""A paid attach's Stripe Checkout Session: the line items of a product, and the session with the
customer's discount coupon. The audited service that asks for it is `billing.services.checkout`."""

from __future__ import annotations

from billing.models import Price
from billing.stripe_io.client import call, client
from billing.stripe_io.customers import ensure_stripe_customer
from customers.errors import ServiceError

STRIPE_INTERVAL = {"month": ("month", 1), "quarter": ("month", 3), "semi_annual": ("month", 6), "year": ("year", 1)}


def _line_item(price, product) -> dict:
    """The line item of a price that is bought up front (not a usage price)."""
    if price.stripe_price_id:
        return {"price": price.stripe_price_id, "quantity": 1}
    data = {
        "currency": price.currency,
        "unit_amount": price.amount,
        "product_data": {"name": product.name, "metadata": {"product_id": product.product_id}},
    }
    if price.is_recurring:
        interval, count = STRIPE_INTERVAL[price.interval]
        data["recurring"] = {"interval": interval, "interval_count": count * price.interval_count}
    return {"price_data": data, "quantity": 1}


def _line_items(product) -> tuple[list[dict], bool]:
    """The product's line items, and whether it is a subscription (any price recurring)."""
    items, recurring = [], False
    for price in product.prices.all().order_by("id"):
        if price.type == Price.Type.USAGE:
            # Usage is charged through a metered Stripe price; without one there is nothing to buy up front.
            if price.stripe_price_id:
                items.append({"price": price.stripe_price_id})
                recurring = True
            continue
        recurring = recurring or price.is_recurring
        items.append(_line_item(price, product))
    return items, recurring


def _trial_data(product, trial_ends_at) -> dict:
    """The subscription's free trial as Stripe takes it: whole days, or (months, years) its end."""
    if trial_ends_at is None:
        return {}
    if product.trial_unit == "day":
        return {"trial_period_days": product.trial_length}
    return {"trial_end": int(trial_ends_at.timestamp())}


def checkout_session_url(
    *, customer, product, success_url: str, cancel_url: str, trial_ends_at=None, coupon: str = ""
) -> str:
    """A Stripe Checkout Session for `product` (a subscription if it has a recurring price, else a
    one-off payment) with the discount `coupon` (a Stripe coupon id, if any), and its URL. With
    `trial_ends_at` (the plan's free trial applies) the subscription starts trialing and is first
    charged when the trial ends.

    Call it outside any transaction. Creates the Stripe customer first when there is none.
    Raises StripeError (Stripe not connected or failing) or ServiceError (nothing to pay for).
    """
    items, recurring = _line_items(product)
    if not items:
        raise ServiceError(f"{product.name} has no price to pay for.", code="product_has_no_price", field="product_id")
    sessions = client(customer.env).v1.checkout.sessions
    stripe_id = ensure_stripe_customer(customer)
    metadata = {
        "customer_id": customer.customer_id,
        "env": customer.env,
        "product_id": product.product_id,
        "product_version": str(product.version),
    }
    params: dict = {
        "mode": "subscription" if recurring else "payment",
        "customer": stripe_id,
        "line_items": items,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": customer.customer_id,
        "metadata": metadata,
    }
    if recurring:
        params["subscription_data"] = {"metadata": metadata, **_trial_data(product, trial_ends_at)}
    else:
        params["invoice_creation"] = {"enabled": True, "invoice_data": {"metadata": metadata}}
    if coupon:
        params["discounts"] = [{"coupon": coupon}]
    # The library's own key covers its retries; a new attempt is a new session.
    return call(customer.env, sessions.create, params).url
