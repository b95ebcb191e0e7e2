"""A customer's discount rewards in Stripe: each reward's Stripe coupon (one per Stripe mode), and the
`discounts` of the customer's live Stripe subscriptions kept equal to its discount rewards.

Our Stripe API version has no customer-level coupon any more, so a customer's discount rewards act
in Stripe as the `discounts` of the customer's subscriptions and of every Checkout Session we create.
"""

from __future__ import annotations

import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import DISCOUNT_REWARD_TYPES, CustomerReward, Reward
from billing.stripe_io.client import StripeError, call, client, idempotency_key, paged
from billing.stripe_io.config import is_configured
from billing.stripe_io.customers import DISCOUNTS, record_failure, record_success
from customers.audit import AuditAction, audit_record
from customers.models import Customer

LIVE_SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
COUPON_DURATION = {"one_off": "once", "months": "repeating", "forever": "forever"}
# Rewards are shared by both environments; a coupon exists in one Stripe mode only.
COUPON_FIELD = {"sandbox": "stripe_coupon_id", "live": "stripe_live_coupon_id"}


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


def coupon_for_reward(reward, *, env: str) -> str:
    """The discount reward's coupon in the environment's Stripe mode, creating the coupon there the first time."""

    field = COUPON_FIELD[env]
    if getattr(reward, field):
        return getattr(reward, field)
    params = coupon_params(reward)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    coupon = call(
        env,
        client(env).v1.coupons.create,
        params,
        {"idempotency_key": idempotency_key("reward", reward.pk, "coupon", digest)},
    )
    with transaction.atomic():
        stored = Reward.objects.filter(pk=reward.pk, **{field: ""}).update(**{field: coupon.id})
        if stored:
            audit_record(
                actor=None,
                action=AuditAction.REWARD_STRIPE_COUPON,
                target_type="reward",
                target_id=reward.reward_id,
                after={field: coupon.id},
                env=env,
            )
    reward.refresh_from_db(fields=[field])
    return getattr(reward, field)


def active_discounts(customer, now=None) -> list:
    """The customer's discount rewards in force, newest first."""

    now = now or timezone.now()
    applied = (
        CustomerReward.objects.filter(
            customer=customer,
            removed_at__isnull=True,
            reward__type__in=DISCOUNT_REWARD_TYPES,
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("reward")
        .order_by("-applied_at", "-id")
    )
    return [cr.reward for cr in applied]


def discounts_changed(*, customer, reward, audit_entry) -> None:
    """Called inside reward_apply / reward_remove: bring the Stripe discounts in line once it commits."""
    if customer.stripe_id and reward.is_discount and is_configured(customer.env):
        transaction.on_commit(
            partial(
                push_discounts, customer_pk=customer.pk, idempotency_prefix=idempotency_key("rewards", audit_entry.pk)
            ),
            robust=True,
        )


def push_discounts(*, customer_pk: int, idempotency_prefix: str) -> str:
    """Make the discounts of the customer's live Stripe subscriptions exactly its discount rewards
    (their coupons created as needed). Returns the error, or ""."""

    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or not customer.stripe_id or not is_configured(customer.env):
        return ""
    env = customer.env
    rewards = active_discounts(customer)
    try:
        coupons = [coupon_for_reward(r, env=env) for r in rewards]
        subscriptions = client(env).v1.subscriptions
        for sub in paged(env, subscriptions.list, {"customer": customer.stripe_id}):
            if sub["status"] not in LIVE_SUBSCRIPTION_STATUSES:
                continue
            call(
                env,
                subscriptions.update,
                sub["id"],
                {"discounts": [{"coupon": c} for c in coupons] or ""},
                {"idempotency_key": idempotency_key(idempotency_prefix, sub["id"])},
            )
    except StripeError as exc:
        return record_failure(customer.pk, DISCOUNTS, exc)
    CustomerReward.objects.filter(customer=customer, reward__in=rewards, removed_at__isnull=True).update(
        stripe_synced_at=timezone.now()
    )
    record_success(customer.pk, DISCOUNTS)
    return ""
