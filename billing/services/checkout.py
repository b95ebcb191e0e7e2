"""A paid attach's Stripe Checkout: the session's URL with the customer's discount, audited once Stripe made it.
Nothing else changes here until Stripe reports the payment (the webhook attaches the plan)."""

from __future__ import annotations

from billing.selectors import active_discounts
from billing.services.rewards import reward_coupon
from billing.stripe_io.checkout import checkout_session_url
from customers.audit import AuditAction, audit_record


def checkout_url_for(*, customer, product, success_url: str, cancel_url: str, trial_ends_at=None) -> str:
    """A Stripe Checkout Session for `product` (a subscription if it has a recurring price, else a one-off
    payment) with the customer's newest discount reward in force as its coupon, and its URL. With
    `trial_ends_at` (the plan's free trial applies) the subscription starts trialing and is first charged
    when the trial ends.

    Call it outside any transaction. Creates the Stripe customer (and the reward's coupon) first when there
    is none. Raises StripeError (Stripe not connected or failing) or ServiceError (nothing to pay for)."""
    discounts = active_discounts(customer)
    return checkout_session_url(
        customer=customer,
        product=product,
        success_url=success_url,
        cancel_url=cancel_url,
        trial_ends_at=trial_ends_at,
        coupon=reward_coupon(discounts[0], env=customer.env) if discounts else "",
    )


def checkout_create(*, customer, product, actor, success_url: str, cancel_url: str, trial_ends_at=None) -> str:
    """A paid attach: the Checkout Session's URL (see `checkout_url_for`), and a line in the audit trail once
    Stripe made it. Raises StripeError or ServiceError; then nothing is audited."""
    url = checkout_url_for(
        customer=customer,
        product=product,
        success_url=success_url,
        cancel_url=cancel_url,
        trial_ends_at=trial_ends_at,
    )
    audit_record(
        actor=actor,
        action=AuditAction.CHECKOUT_CREATE,
        customer=customer,
        target_type="product",
        target_id=product.product_id,
        after={"product": product.product_id, "version": product.version}
        | ({"trial_ends_at": trial_ends_at} if trial_ends_at else {}),
    )
    return url
