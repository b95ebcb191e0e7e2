"""Referral programs and their codes, as Autumn runs them: creating, changing and deleting a program (of one
environment, linked to a reward of the catalogue), a customer's code for a program (one per customer and program:
asking again answers the same code), and redeeming a code. A redemption is triggered, and the program's reward
given out through the rewards service, at once (`customer_creation`) or when the redeemer attaches one of the
program's plans (`checkout`, from product_attach). Every change is atomic and audited with its actor."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import (
    SLUG_PATTERN,
    CustomerProductStatus,
    Product,
    ReceivedBy,
    RedeemOn,
    ReferralCode,
    ReferralProgram,
    ReferralRedemption,
    Reward,
    RewardType,
)
from billing.services.rewards import reward_grant
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import Customer

CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
CODE_LENGTH = 6  # Autumn's referral codes: six capitals and digits


def _invalid(message: str, field: str | None = None) -> ServiceError:
    return ServiceError(message, code="invalid_request", field=field)


def _check_reward(reward: Reward) -> None:
    if reward.type == RewardType.FREE_PRODUCT:
        raise _invalid(
            "Free product rewards are deprecated for referral programs. Use a feature grant or discount reward "
            "instead.",
            "reward_id",
        )
    if not reward.active:
        raise _invalid(f"Reward {reward.reward_id} is retired.", "reward_id")


def _check_trigger(*, env: str, redeem_on: str, plan_ids: list[str], max_redemptions: int | None) -> None:
    """Autumn's rules: a checkout-triggered program names at least one plan and a positive redemption cap."""
    if redeem_on not in RedeemOn.values:
        raise _invalid(f"Unknown redeem_on {redeem_on!r}.", "redeem_on")
    if max_redemptions is not None and max_redemptions < 1:
        raise _invalid("max_redemptions is a positive number, or null for unlimited.", "max_redemptions")
    if len(set(plan_ids)) != len(plan_ids):
        raise _invalid("Plan IDs must be unique.", "plan_ids")
    known = set(Product.objects.filter(product_id__in=plan_ids).values_list("product_id", flat=True))
    unknown = [p for p in plan_ids if p not in known]
    if unknown:
        raise ServiceError(f"Plan {unknown[0]} not found", code="product_not_found", field="plan_ids", status=404)
    if redeem_on == RedeemOn.CHECKOUT:
        if not plan_ids:
            raise _invalid("When redeem_on is checkout, name at least one plan in plan_ids.", "plan_ids")
        if not max_redemptions:
            raise _invalid("When redeem_on is checkout, max_redemptions must be greater than 0.", "max_redemptions")


def _snapshot(program: ReferralProgram) -> dict:
    return {
        "reward": program.reward.reward_id,
        "redeem_on": program.redeem_on,
        "received_by": program.received_by,
        "max_redemptions": program.max_redemptions,
        "plan_ids": program.plan_ids,
        "exclude_trial": program.exclude_trial,
    }


@transaction.atomic
def referral_program_create(
    *,
    env: str,
    program_id: str,
    reward: Reward,
    redeem_on: str,
    received_by: str,
    actor: Actor,
    max_redemptions: int | None = None,
    plan_ids: list[str] | None = None,
    exclude_trial: bool | None = None,
) -> ReferralProgram:
    """A program of the environment whose codes earn `reward`. A taken id is a 409; nothing changes on a refusal."""
    if not re.fullmatch(SLUG_PATTERN, program_id) or len(program_id) > 255:
        raise _invalid("A referral program id is letters, digits, _ and - (up to 255 characters).", "id")
    if received_by not in ReceivedBy.values:
        raise _invalid(f"Unknown received_by {received_by!r}.", "received_by")
    _check_reward(reward)
    plan_ids = list(plan_ids or [])
    _check_trigger(env=env, redeem_on=redeem_on, plan_ids=plan_ids, max_redemptions=max_redemptions)
    if ReferralProgram.objects.select_for_update().filter(env=env, program_id=program_id).exists():
        raise Conflict(f"Referral program {program_id} already exists", code="duplicate_referral_program", field="id")
    program = ReferralProgram.objects.create(
        env=env,
        program_id=program_id,
        reward=reward,
        redeem_on=redeem_on,
        received_by=received_by,
        max_redemptions=max_redemptions,
        plan_ids=plan_ids,
        exclude_trial=exclude_trial,
    )
    audit_record(
        actor=actor,
        action=AuditAction.REFERRAL_PROGRAM_CREATE,
        env=env,
        target_type="referral_program",
        target_id=program_id,
        after=_snapshot(program),
    )
    return program


UNCHANGED = object()


@transaction.atomic
def referral_program_update(
    *,
    program: ReferralProgram,
    actor: Actor,
    reward: Reward | None = None,
    redeem_on: str | None = None,
    received_by: str | None = None,
    max_redemptions=UNCHANGED,
    plan_ids=UNCHANGED,
    exclude_trial=UNCHANGED,
) -> ReferralProgram:
    """Change what a program gives and when; a field left UNCHANGED keeps its value, None clears a nullable one
    (Autumn's patch). Redemptions already triggered keep what they gave."""
    locked = ReferralProgram.objects.select_for_update().select_related("reward").get(pk=program.pk)
    before = _snapshot(locked)
    if reward is not None:
        _check_reward(reward)
        locked.reward = reward
    if redeem_on is not None:
        locked.redeem_on = redeem_on
    if received_by is not None:
        if received_by not in ReceivedBy.values:
            raise _invalid(f"Unknown received_by {received_by!r}.", "received_by")
        locked.received_by = received_by
    if max_redemptions is not UNCHANGED:
        locked.max_redemptions = max_redemptions
    if plan_ids is not UNCHANGED:
        locked.plan_ids = list(plan_ids or [])
    if exclude_trial is not UNCHANGED:
        locked.exclude_trial = exclude_trial
    _check_trigger(
        env=locked.env, redeem_on=locked.redeem_on, plan_ids=locked.plan_ids, max_redemptions=locked.max_redemptions
    )
    after = _snapshot(locked)
    if after != before:
        locked.save()
        changed = [k for k in after if after[k] != before[k]]
        audit_record(
            actor=actor,
            action=AuditAction.REFERRAL_PROGRAM_UPDATE,
            env=locked.env,
            target_type="referral_program",
            target_id=locked.program_id,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return locked


@transaction.atomic
def referral_program_delete(*, program: ReferralProgram, actor: Actor) -> None:
    """Delete a program and its codes. One whose codes were redeemed stays for its customers' history: a 409."""
    locked = ReferralProgram.objects.select_for_update().select_related("reward").get(pk=program.pk)
    redeemed = locked.redemptions.count()
    if redeemed:
        raise Conflict(
            f"Referral program {locked.program_id} has redemptions ({redeemed}); it stays for their history.",
            code="referral_program_in_use",
        )
    audit_record(
        actor=actor,
        action=AuditAction.REFERRAL_PROGRAM_DELETE,
        env=locked.env,
        target_type="referral_program",
        target_id=locked.program_id,
        before=_snapshot(locked),
    )
    locked.delete()


def _same_env(customer: Customer, program: ReferralProgram) -> None:
    if customer.env != program.env:  # callers look both up in the key's environment: this is a guard
        raise ServiceError(
            f"Referral program {program.program_id} not found", code="reward_program_not_found", status=404
        )


@transaction.atomic
def referral_code_create(*, customer: Customer, program: ReferralProgram, actor: Actor) -> ReferralCode:
    """The customer's code for the program: the one it already has, else a new one (audited)."""
    _same_env(customer, program)
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    existing = ReferralCode.objects.filter(program=program, customer=customer).first()
    if existing is not None:
        return existing
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not ReferralCode.objects.filter(env=customer.env, code=code).exists():
            break
    referral_code = ReferralCode.objects.create(env=customer.env, code=code, program=program, customer=customer)
    audit_record(
        actor=actor,
        action=AuditAction.REFERRAL_CODE_CREATE,
        customer=customer,
        target_type="referral_program",
        target_id=program.program_id,
        after={"code": code},
    )
    return referral_code


def _triggered_count(code: ReferralCode) -> int:
    return ReferralRedemption.objects.filter(code=code, triggered=True).count()


@transaction.atomic
def referral_code_redeem(
    *, customer: Customer, code: str, actor: Actor, now: datetime | None = None
) -> ReferralRedemption:
    """The customer redeems another customer's code of its environment. Refused (nothing changes): an unknown
    code (404), a code whose triggered redemptions reached the program's max, a second code of the same
    program, the customer's own code (or one of a customer with its fingerprint) — each a 400 as in Autumn.
    A `customer_creation` program gives its reward out now; a `checkout` one when the customer checks out."""
    now = now or timezone.now()
    referral_code = (
        ReferralCode.objects.select_for_update()
        .select_related("program__reward", "customer")
        .filter(env=customer.env, code=code)
        .first()
    )
    if referral_code is None:
        raise ServiceError("Referral code not found", code="referral_code_not_found", field="code", status=404)
    program, referrer = referral_code.program, referral_code.customer
    if program.max_redemptions and _triggered_count(referral_code) >= program.max_redemptions:
        raise ServiceError(
            "Referral code has reached max redemptions", code="referral_code_max_redemptions_reached", field="code"
        )
    if ReferralRedemption.objects.filter(program=program, redeemer=customer).exists():
        raise ServiceError(
            f"Customer {customer.customer_id} has already redeemed a code in this referral program",
            code="customer_already_redeemed_referral_code",
            field="code",
        )
    if referrer.pk == customer.pk or (referrer.fingerprint and referrer.fingerprint == customer.fingerprint):
        raise ServiceError(
            "Customer cannot redeem their own code", code="customer_cannot_redeem_own_code", field="code"
        )
    redemption = ReferralRedemption.objects.create(
        code=referral_code, program=program, redeemer=customer, created_at=now
    )
    audit_record(
        actor=actor,
        action=AuditAction.REFERRAL_REDEEM,
        customer=customer,
        target_type="referral_code",
        target_id=referral_code.code,
        after={"program": program.program_id, "referrer": referrer.customer_id},
    )
    if program.redeem_on == RedeemOn.CUSTOMER_CREATION:
        _trigger(redemption, actor=actor, now=now)
    return redemption


def _trigger(redemption: ReferralRedemption, *, actor: Actor, now: datetime) -> None:
    """Give the program's reward out: to the referrer, and to the redeemer when the program says all."""
    program, referrer = redemption.program, redemption.code.customer
    reason = f"Referral {redemption.code.code} ({program.program_id})"
    redemption.referrer_applied = reward_grant(
        customer=referrer, reward=program.reward, actor=actor, reason=reason, now=now
    )
    if program.received_by == ReceivedBy.ALL:
        redemption.redeemer_applied = reward_grant(
            customer=redemption.redeemer, reward=program.reward, actor=actor, reason=reason, now=now
        )
    redemption.triggered, redemption.triggered_at = True, now
    redemption.save(update_fields=["triggered", "triggered_at", "referrer_applied", "redeemer_applied"])
    audit_record(
        actor=actor,
        action=AuditAction.REFERRAL_TRIGGER,
        customer=redemption.redeemer,
        target_type="referral_code",
        target_id=redemption.code.code,
        after={
            "reward": program.reward.reward_id,
            "referrer": referrer.customer_id if redemption.referrer_applied else None,
            "redeemer": redemption.redeemer.customer_id if redemption.redeemer_applied else None,
        },
    )


def referral_checkout(*, customer: Customer, product: Product, status: str, actor: Actor, now: datetime) -> None:
    """Called by product_attach (inside its transaction): the customer's untriggered redemption of a checkout
    program naming this plan is triggered, unless the code reached its max, or the plan starts a trial and the
    program excludes trials."""
    pending = (
        ReferralRedemption.objects.select_for_update()
        .select_related("program__reward", "code__customer", "redeemer")
        .filter(redeemer=customer, triggered=False, program__redeem_on=RedeemOn.CHECKOUT)
    )
    for redemption in pending:
        program = redemption.program
        if product.product_id not in (program.plan_ids or []):
            continue
        if status == CustomerProductStatus.TRIALING and program.exclude_trial:
            continue
        if program.max_redemptions and _triggered_count(redemption.code) >= program.max_redemptions:
            continue
        _trigger(redemption, actor=actor, now=now)
