"""A customer's rewards (coupons): applying and removing them, audited, and their Stripe discounts kept in step:
each discount reward's Stripe coupon (one per Stripe mode, stored and audited once made) and the discounts of the
customer's live Stripe subscriptions pushed once a change commits."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from billing.intervals import add_intervals
from billing.models import CustomerReward, Reward, RewardDuration
from billing.selectors import active_discounts
from billing.stripe_io.client import StripeError, idempotency_key
from billing.stripe_io.config import is_configured
from billing.stripe_io.customers import DISCOUNTS, record_failure, record_success
from billing.stripe_io.discounts import coupon_create, subscription_discounts_set
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import ApiKey, Customer


@transaction.atomic
def reward_apply(*, customer: Customer, reward: Reward, actor: Actor, now: datetime | None = None) -> CustomerReward:
    """Give the customer an active reward, once at a time; a reward of some months expires after them."""
    now = now or timezone.now()
    if not reward.active:
        raise ServiceError(f"{reward.name} is not active.", code="reward_inactive", field="reward")
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    if CustomerReward.objects.filter(customer=customer, reward=reward, removed_at__isnull=True).exists():
        raise Conflict(
            f"{customer.display_name} already has {reward.name}.", code="reward_already_applied", field="reward"
        )
    expires_at = None
    if reward.duration == RewardDuration.MONTHS and reward.duration_months:
        expires_at = add_intervals(now, "month", reward.duration_months)
    applied = CustomerReward.objects.create(
        customer=customer,
        reward=reward,
        applied_at=now,
        expires_at=expires_at,
        applied_by=actor if actor is not None and not isinstance(actor, ApiKey) else None,
    )
    entry = audit_record(
        actor=actor,
        action=AuditAction.REWARD_APPLY,
        customer=customer,
        target_type="reward",
        target_id=reward.reward_id,
        after={"reward": reward.reward_id, "expires_at": expires_at},
    )
    discounts_changed(customer=customer, reward=reward, audit_entry=entry)
    return applied


@transaction.atomic
def reward_remove(*, customer_reward: CustomerReward, actor: Actor, now: datetime | None = None) -> None:
    """Take an applied reward away (it stays in the history, marked removed). Removing twice changes nothing."""
    now = now or timezone.now()
    locked = CustomerReward.objects.select_for_update().select_related("customer", "reward").get(pk=customer_reward.pk)
    if locked.removed_at is not None:
        return
    locked.removed_at = now
    locked.save(update_fields=["removed_at"])
    entry = audit_record(
        actor=actor,
        action=AuditAction.REWARD_REMOVE,
        customer=locked.customer,
        target_type="reward",
        target_id=locked.reward.reward_id,
        before={"reward": locked.reward.reward_id},
    )
    discounts_changed(customer=locked.customer, reward=locked.reward, audit_entry=entry)


# Rewards are shared by both environments; a coupon exists in one Stripe mode only.
COUPON_FIELD = {"sandbox": "stripe_coupon_id", "live": "stripe_live_coupon_id"}


def reward_coupon(reward: Reward, *, env: str) -> str:
    """The discount reward's coupon in the environment's Stripe mode: the stored one, else one made in Stripe
    now (call it outside any transaction), stored and audited the first time. Raises StripeError."""
    field = COUPON_FIELD[env]
    if getattr(reward, field):
        return getattr(reward, field)
    coupon_id = coupon_create(reward, env=env)
    with transaction.atomic():
        # A racing caller got the same coupon (the request's idempotency key): the first stores it.
        stored = Reward.objects.filter(pk=reward.pk, **{field: ""}).update(**{field: coupon_id})
        if stored:
            audit_record(
                actor=None,
                action=AuditAction.REWARD_STRIPE_COUPON,
                target_type="reward",
                target_id=reward.reward_id,
                after={field: coupon_id},
                env=env,
            )
    reward.refresh_from_db(fields=[field])
    return getattr(reward, field)


def discounts_changed(*, customer: Customer, reward: Reward, audit_entry) -> None:
    """Called inside reward_apply / reward_remove: bring the Stripe discounts in line once it commits."""
    if customer.stripe_id and reward.is_discount and is_configured(customer.env):
        transaction.on_commit(
            partial(
                discounts_push, customer_pk=customer.pk, idempotency_prefix=idempotency_key("rewards", audit_entry.pk)
            ),
            robust=True,
        )


def discounts_push(*, customer_pk: int, idempotency_prefix: str) -> str:
    """Make the discounts of the customer's live Stripe subscriptions exactly its discount rewards (their
    coupons made as needed), and note when they were last in step. Returns the error, or ""."""
    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or not customer.stripe_id or not is_configured(customer.env):
        return ""
    rewards = active_discounts(customer)
    try:
        coupons = [reward_coupon(r, env=customer.env) for r in rewards]
        subscription_discounts_set(
            env=customer.env,
            stripe_customer_id=customer.stripe_id,
            coupons=coupons,
            idempotency_prefix=idempotency_prefix,
        )
    except StripeError as exc:
        return record_failure(customer.pk, DISCOUNTS, exc)
    CustomerReward.objects.filter(customer=customer, reward__in=rewards, removed_at__isnull=True).update(
        stripe_synced_at=timezone.now()
    )
    record_success(customer.pk, DISCOUNTS)
    return ""
