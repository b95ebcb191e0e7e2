"""A customer's Stripe subscription following its plan: the plan changed (with or without proration),
cancelled now or at the period end, uncancelled; and the customer's billing portal.

The plan services call `plan_changed`, `cancelled` and `uncancelled` inside their transaction; each
registers its push with `on_commit`, so Stripe is called only once the change is stored, and a failure
is shown on the customer ("Subscription not updated in Stripe: …") without undoing it."""

from __future__ import annotations

import time
from functools import partial

from django.db import transaction

from billing.models import CustomerProduct
from billing.stripe_io.checkout import STRIPE_INTERVAL
from billing.stripe_io.client import StripeError, call, client, idempotency_key
from billing.stripe_io.config import is_configured
from billing.stripe_io.customers import ensure_stripe_customer, record_failure, record_success

SUBSCRIPTION = "Subscription not updated in Stripe"


def _pushable(cp: CustomerProduct) -> bool:
    return bool(cp.stripe_subscription_id) and is_configured(cp.customer.env)


def _later(push, cp: CustomerProduct, **kwargs) -> None:
    transaction.on_commit(partial(push, customer_product_pk=cp.pk, **kwargs), robust=True)


def plan_changed(*, customer_product: CustomerProduct, prorate: bool) -> None:
    """Put the subscription on the customer product's plan once the change commits."""
    if _pushable(customer_product):
        _later(push_plan, customer_product, prorate=prorate)


def cancelled(*, customer_product: CustomerProduct, at_period_end: bool) -> None:
    if _pushable(customer_product):
        _later(push_cancel, customer_product, at_period_end=at_period_end, change=_change_id())


def uncancelled(*, customer_product: CustomerProduct) -> None:
    if _pushable(customer_product):
        _later(push_cancel, customer_product, at_period_end=False, undo=True, change=_change_id())


def _change_id() -> str:
    """Names one cancel or uncancel (fixed when it is made, so retries of its push share it)."""
    return str(time.time_ns())


def _load(pk: int) -> CustomerProduct | None:
    cp = CustomerProduct.objects.select_related("customer", "product").filter(pk=pk).first()
    return cp if cp is not None and _pushable(cp) else None


def _price_items(cp: CustomerProduct, stripe_product: str) -> list[dict]:
    items = []
    for price in cp.product.prices.filter(type="fixed").order_by("id"):
        if not price.is_recurring:
            continue
        if price.stripe_price_id:
            items.append({"price": price.stripe_price_id, "quantity": cp.quantity})
            continue
        interval, count = STRIPE_INTERVAL[price.interval]
        data = {
            "currency": price.currency,
            "unit_amount": price.amount,
            "product": stripe_product,
            "recurring": {"interval": interval, "interval_count": count * price.interval_count},
        }
        items.append({"price_data": data, "quantity": cp.quantity})
    return items


def push_plan(*, customer_product_pk: int, prorate: bool) -> str:
    """Replace the subscription's items with the plan's prices. Returns the error, or ""."""
    cp = _load(customer_product_pk)
    if cp is None:
        return ""
    env, key = cp.customer.env, idempotency_key("plan", cp.pk, cp.product.pk)
    stripe = client(env).v1
    try:
        sub = call(env, stripe.subscriptions.retrieve, cp.stripe_subscription_id).to_dict()
        product = call(
            env,
            stripe.products.create,
            {"name": cp.product.name, "metadata": {"product_id": cp.product.product_id}},
            {"idempotency_key": idempotency_key(key, "product")},
        )
        old = [{"id": item["id"], "deleted": True} for item in (sub.get("items") or {}).get("data", [])]
        params = {
            "items": old + _price_items(cp, product.id),
            "proration_behavior": "always_invoice" if prorate else "none",
            "metadata": {"product_id": cp.product.product_id, "product_version": str(cp.product.version)},
        }
        call(env, stripe.subscriptions.update, cp.stripe_subscription_id, params, {"idempotency_key": key})
    except StripeError as exc:
        return record_failure(cp.customer_id, SUBSCRIPTION, exc)
    record_success(cp.customer_id, SUBSCRIPTION)
    return ""


def push_cancel(*, customer_product_pk: int, at_period_end: bool, change: str, undo: bool = False) -> str:
    """Cancel the subscription now, or at its period end, or (`undo`) no longer at its period end."""
    cp = _load(customer_product_pk)
    if cp is None:
        return ""
    env = cp.customer.env
    subscriptions = client(env).v1.subscriptions
    key = idempotency_key("cancel", cp.pk, "undo" if undo else at_period_end, change)
    try:
        if at_period_end or undo:
            params = {"cancel_at_period_end": not undo}
            call(env, subscriptions.update, cp.stripe_subscription_id, params, {"idempotency_key": key})
        else:
            call(env, subscriptions.cancel, cp.stripe_subscription_id)
    except StripeError as exc:
        return record_failure(cp.customer_id, SUBSCRIPTION, exc)
    record_success(cp.customer_id, SUBSCRIPTION)
    return ""


def billing_portal_url(*, customer, return_url: str) -> str:
    """A Stripe billing-portal session for the customer (its Stripe customer made first if need be), and its
    URL. Call it outside any transaction; raises StripeError (not connected, or Stripe failing)."""
    stripe_id = ensure_stripe_customer(customer)
    sessions = client(customer.env).v1.billing_portal.sessions
    return call(customer.env, sessions.create, {"customer": stripe_id, "return_url": return_url}).url
