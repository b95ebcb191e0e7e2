"""Rewards in the catalogue: creating and deleting them (audited). A customer's rewards (coupons): applying and
removing them, audited, and their Stripe discounts kept in step:
each discount reward's Stripe coupon (one per Stripe mode, stored and audited once made) and the discounts of the
customer's live Stripe subscriptions pushed once a change commits."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import partial

from django.db import transaction
from django.utils import timezone

from billing.intervals import add_intervals
from billing.models import SLUG_PATTERN, CustomerReward, Feature, Reward, RewardDuration, RewardType
from billing.selectors import active_discounts
from billing.services.balances import balance_create
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


REWARD_ID_MAX_LENGTH = 255
PROMO_CODE_MAX_LENGTH = 255


def _refuse(message: str, field: str) -> None:
    raise ServiceError(message, code="invalid_input", field=field)


def _promo_codes_free(codes: list[str]) -> None:
    """Promo codes are redeemed by their text, so each names one reward: no repeats, none another's."""
    if len(set(codes)) != len(codes):
        _refuse("A promo code appears twice.", "promo_codes")
    for code in codes:
        if not code or len(code) > PROMO_CODE_MAX_LENGTH or code != code.strip():
            _refuse(
                f"A promo code is 1 to {PROMO_CODE_MAX_LENGTH} characters, without spaces around it.", "promo_codes"
            )
        taken = Reward.objects.filter(promo_codes__contains=[code]).values_list("reward_id", flat=True).first()
        if taken is not None:
            raise Conflict(f"The promo code {code} is already reward {taken}'s.", code="duplicate_promo_code")


@transaction.atomic
def reward_create(
    *,
    reward_id: str,
    name: str,
    type: str,
    value: Decimal,
    actor: Actor,
    duration: str = RewardDuration.ONE_OFF,
    duration_months: int | None = None,
    currency: str = "usd",
    promo_codes: list[str] = (),
    grant_feature: Feature | None = None,
) -> Reward:
    """Add a reward to the catalogue: a discount (percent or minor units off, once, for some months or forever)
    or a grant of `value` units of `grant_feature` (for some months or until removed). Refused with the field at
    fault, changing nothing: a taken id or promo code (409), a percentage over 100, months without a count."""
    if not isinstance(reward_id, str) or not re.fullmatch(SLUG_PATTERN, reward_id) or len(reward_id) > 255:
        _refuse("A reward id is letters, digits, _ and - (up to 255 characters).", "id")
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 255:
        _refuse("Give the reward a name (up to 255 characters).", "name")
    if type not in (RewardType.PERCENTAGE_DISCOUNT, RewardType.FIXED_DISCOUNT, RewardType.FEATURE_GRANT):
        _refuse(f"Unknown reward type {type!r}.", "type")
    if value < 0 or (type == RewardType.PERCENTAGE_DISCOUNT and value > 100):
        _refuse("A discount is 0 to 100 percent, an amount or a grant at least 0.", "value")
    if duration not in RewardDuration.values:
        _refuse(f"Unknown duration {duration!r}: one_off, months or forever.", "duration")
    if duration == RewardDuration.MONTHS and not (isinstance(duration_months, int) and 1 <= duration_months <= 1200):
        _refuse("A duration in months needs a length of 1 to 1,200 months.", "duration")
    if type == RewardType.FEATURE_GRANT and grant_feature is None:
        _refuse("A feature grant names the feature it grants.", "grants")
    codes = list(promo_codes)
    _promo_codes_free(codes)
    if Reward.objects.select_for_update().filter(reward_id=reward_id).exists():
        raise Conflict(f"A reward with id {reward_id} already exists.", code="duplicate_reward_id", field="id")
    reward = Reward.objects.create(
        reward_id=reward_id,
        name=name,
        type=type,
        value=value,
        currency=currency,
        duration=duration,
        duration_months=duration_months if duration == RewardDuration.MONTHS else None,
        promo_codes=codes,
        grant_feature=grant_feature,
    )
    audit_record(
        actor=actor,
        action=AuditAction.REWARD_CREATE,
        env=actor.env if isinstance(actor, ApiKey) else "",
        target_type="reward",
        target_id=reward.reward_id,
        after={
            "name": name,
            "type": type,
            "value": str(value),
            "duration": duration,
            "duration_months": reward.duration_months,
            "promo_codes": codes,
            "grant_feature": grant_feature.feature_id if grant_feature else None,
        },
    )
    return reward


@transaction.atomic
def reward_delete(*, reward: Reward, actor: Actor) -> None:
    """Delete a reward no customer ever had. One that was applied stays (its history refers to it): a 409."""
    locked = Reward.objects.select_for_update().get(pk=reward.pk)
    applied = CustomerReward.objects.filter(reward=locked).count()
    if applied:
        raise Conflict(
            f"Reward {locked.reward_id} was applied to customers ({applied}); it stays for their history.",
            code="reward_in_use",
        )
    audit_record(
        actor=actor,
        action=AuditAction.REWARD_DELETE,
        env=actor.env if isinstance(actor, ApiKey) else "",
        target_type="reward",
        target_id=locked.reward_id,
        before={
            "name": locked.name,
            "type": locked.type,
            "value": str(locked.value),
            "promo_codes": locked.promo_codes,
        },
    )
    locked.delete()


@transaction.atomic
def reward_redeem(*, customer: Customer, code: str, actor: Actor, now: datetime | None = None) -> tuple[Reward, list]:
    """Redeem a promo code for a customer: its active reward is applied (`reward_apply`), and a feature grant's
    units are granted beside the customer's plans (`balance_create`), for the reward's months or until removed.
    Returns the reward and the balances granted. A code no active reward has is a 404, a reward the customer
    already has a 409; either way nothing changes."""
    now = now or timezone.now()
    reward = (
        Reward.objects.select_related("grant_feature")
        .filter(active=True, promo_codes__contains=[code])
        .order_by("pk")
        .first()
    )
    if reward is None:
        raise ServiceError(f"Promo code {code} not found", code="promo_code_not_found", field="code", status=404)
    if reward.type == RewardType.FREE_PRODUCT:
        raise ServiceError(
            f"Promo code {code} gives a free product, which is applied on the dashboard here, not redeemed.",
            code="not_supported",
            field="code",
            status=422,
        )
    applied = reward_apply(customer=customer, reward=reward, actor=actor, now=now)
    return reward, _grant_units(
        customer=customer,
        reward=reward,
        actor=actor,
        reason=f"Promo code {code} (reward {reward.reward_id})",
        expires_at=applied.expires_at,
        now=now,
    )


def _grant_units(*, customer: Customer, reward: Reward, actor: Actor, reason: str, expires_at, now) -> list:
    if reward.type != RewardType.FEATURE_GRANT or reward.grant_feature is None:
        return []
    return [
        balance_create(
            customer=customer,
            feature=reward.grant_feature,
            actor=actor,
            reason=reason,
            granted=reward.value,
            expires_at=expires_at,
            now=now,
        )
    ]


@transaction.atomic
def reward_grant(*, customer: Customer, reward: Reward, actor: Actor, reason: str, now: datetime | None = None) -> bool:
    """Give a customer a reward a referral earned it. A feature grant adds its units every time (each referral
    earns them again), for the reward's months or until removed; a discount is applied unless the customer
    already has it (a discount is not stacked on itself, as Autumn leaves a Stripe customer's discount alone).
    Returns whether the customer received something."""
    now = now or timezone.now()
    if reward.type == RewardType.FREE_PRODUCT or not reward.active:
        return False
    held = CustomerReward.objects.filter(customer=customer, reward=reward, removed_at__isnull=True).first()
    if held is None:
        held = reward_apply(customer=customer, reward=reward, actor=actor, now=now)
    elif reward.is_discount:
        return False
    expires_at = None
    if reward.duration == RewardDuration.MONTHS and reward.duration_months:
        expires_at = add_intervals(now, "month", reward.duration_months)
    _grant_units(customer=customer, reward=reward, actor=actor, reason=reason, expires_at=expires_at, now=now)
    return True


@transaction.atomic
def reward_update(
    *,
    reward: Reward,
    actor: Actor,
    name: str | None = None,
    promo_codes: list[str] | None = None,
    grant: tuple[Feature, Decimal, int | None] | None = None,
) -> Reward:
    """Rename a reward, replace its promo codes, or (a feature grant) what it grants: (feature, units, months or
    None for until removed). What customers already redeemed stays as it was. A discount's amount and duration
    do not change (its Stripe coupons are fixed): make a new reward instead. Audited with what changed."""
    locked = Reward.objects.select_for_update().get(pk=reward.pk)
    before, after = {}, {}
    if name is not None:
        name = name.strip()
        if not name or len(name) > 255:
            _refuse("Give the reward a name (up to 255 characters).", "name")
        if name != locked.name:
            before["name"], after["name"] = locked.name, name
            locked.name = name
    if promo_codes is not None:
        codes = list(promo_codes)
        others = [c for c in codes if c not in (locked.promo_codes or [])]
        if len(set(codes)) != len(codes):
            _refuse("A promo code appears twice.", "promo_codes")
        _promo_codes_free(others)
        if codes != locked.promo_codes:
            before["promo_codes"], after["promo_codes"] = locked.promo_codes, codes
            locked.promo_codes = codes
    if grant is not None:
        if locked.type != RewardType.FEATURE_GRANT:
            _refuse(f"Reward {locked.reward_id} is a discount, not a feature grant.", "grants")
        feature, value, months = grant
        if value < 0:
            _refuse("A grant is at least 0 units.", "grants")
        if months is not None and not 1 <= months <= 1200:
            _refuse("A grant lasts 1 to 1,200 months.", "grants")
        duration = RewardDuration.MONTHS if months else RewardDuration.FOREVER
        old = (
            locked.grant_feature.feature_id if locked.grant_feature else None,
            locked.value,
            locked.duration_months,
        )
        new = (feature.feature_id, value, months)
        if old != new:
            before["grant"], after["grant"] = [old[0], str(old[1]), old[2]], [new[0], str(new[1]), new[2]]
            locked.grant_feature, locked.value, locked.duration, locked.duration_months = (
                feature,
                value,
                duration,
                months,
            )
    if after:
        locked.save()
        audit_record(
            actor=actor,
            action=AuditAction.REWARD_UPDATE,
            env=actor.env if isinstance(actor, ApiKey) else "",
            target_type="reward",
            target_id=locked.reward_id,
            before=before,
            after=after,
        )
    return locked
