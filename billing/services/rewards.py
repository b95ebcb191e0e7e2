"""A customer's rewards (coupons): applying and removing them, audited, and their Stripe discounts kept in step."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.intervals import add_intervals
from billing.models import CustomerReward, Reward, RewardDuration
from billing.stripe_io.discounts import discounts_changed
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
