"""A customer's discount rewards in Stripe, outbound only: a reward's Stripe coupon made in one Stripe mode,
and the `discounts` of a Stripe customer's live subscriptions set to a list of coupons. What is stored and
audited about them (the coupon's id, when the discounts were last in step) is `billing.services.rewards`'s.

Our Stripe API version has no customer-level coupon any more, so a customer's discount rewards act
in Stripe as the `discounts` of the customer's subscriptions and of every Checkout Session we create.
"""

from __future__ import annotations

import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal

from billing.stripe_io.client import call, client, idempotency_key, paged

LIVE_SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
COUPON_DURATION = {"one_off": "once", "months": "repeating", "forever": "forever"}


def coupon_params(reward) -> dict:
    """The Stripe coupon that stands for a discount reward."""
    params: dict = {
        "duration": COUPON_DURATION[reward.duration],
        "name": reward.name[:40],
        "metadata": {"reward_id": reward.reward_id},
    }
    if reward.duration == "months":
        params["duration_in_months"] = reward.duration_months
    if reward.type == "percentage_discount":
        params["percent_off"] = format(Decimal(reward.value).quantize(Decimal("0.01")).normalize(), "f")
    else:
        params["amount_off"] = int(Decimal(reward.value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        params["currency"] = reward.currency
    return params


def coupon_create(reward, *, env: str) -> str:
    """The id of a new Stripe coupon for the discount reward in the environment's Stripe mode. The request's
    idempotency key comes from the coupon's terms, so a retry (or a second caller racing the first) gets the
    same coupon back instead of a second one."""
    params = coupon_params(reward)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    coupon = call(
        env,
        client(env).v1.coupons.create,
        params,
        {"idempotency_key": idempotency_key("reward", reward.pk, "coupon", digest)},
    )
    return coupon.id


def subscription_discounts_set(*, env: str, stripe_customer_id: str, coupons: list[str], idempotency_prefix: str):
    """Make the discounts of the Stripe customer's live subscriptions exactly `coupons` (none: cleared).
    Raises StripeError."""
    subscriptions = client(env).v1.subscriptions
    for sub in paged(env, subscriptions.list, {"customer": stripe_customer_id}):
        if sub["status"] not in LIVE_SUBSCRIPTION_STATUSES:
            continue
        call(
            env,
            subscriptions.update,
            sub["id"],
            {"discounts": [{"coupon": c} for c in coupons] or ""},
            {"idempotency_key": idempotency_key(idempotency_prefix, sub["id"])},
        )
