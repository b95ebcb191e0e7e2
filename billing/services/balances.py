"""A customer's balances: their resets (lazy and in bulk), what they add up to per feature (FeatureBalance) and
whether a use is allowed (check), and the edits that set, add to or grant a balance, each audited."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from billing.engine import run as engine
from billing.engine.decide import CheckResult, FeatureBalance, covers, draw_order, reset_due, snapshot
from billing.intervals import add_intervals
from billing.models import Balance, Entity, Feature, Interval
from billing.quantities import MAX_ABS, ZERO, parse_quantity
from customers.audit import SYSTEM, Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import Customer
from customers.validation import require_reason

__all__ = ["CheckResult", "FeatureBalance", "covers", "draw_order"]  # the engine's, where callers found them

UNSET = object()
"""A reset date not given to an edit: the balance keeps its own."""


_balance_snapshot = snapshot


# --- resets -------------------------------------------------------------------------------------


def reset_if_due(balance: Balance, now: datetime) -> bool:
    """Reset a locked balance whose reset time has passed (the engine's rule, `reset_due`), audited. The
    caller saves it."""
    reset = reset_due(balance, now)
    if reset is None:
        return False
    audit_record(
        actor=SYSTEM,
        action=AuditAction.BALANCE_RESET,
        customer=balance.customer,
        target_type="balance",
        target_id=balance.pk,
        before=reset.before,
        after=reset.after,
    )
    return True


def due_balances(now: datetime) -> QuerySet[Balance]:
    """The balances (not expired) whose reset time has passed."""
    return Balance.objects.filter(next_reset_at__lte=now).exclude(interval=Interval.LIFETIME)


def balances_reset_due(*, customer: Customer | None = None, now: datetime | None = None, batch_size: int = 500) -> int:
    """Reset every balance whose reset time has passed (of one customer, or all). Returns how many.

    Reads first without a lock, so a page that has nothing to reset pays one cheap query.
    """
    now = now or timezone.now()
    due = due_balances(now)
    if customer is not None:
        # One customer brought current: the engine's resets (one locking load, one store), as a track does.
        return engine.bring_current(customer, now=now) if due.filter(customer=customer).exists() else 0
    count = 0
    while True:
        ids = list(due.order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return count
        with transaction.atomic():
            locked = Balance.objects.select_for_update().select_related("customer", "feature")
            for balance in locked.filter(id__in=ids).order_by("id"):
                if reset_if_due(balance, now):
                    balance.save(update_fields=["remaining", "adjustment", "next_reset_at", "updated_at"])
                    count += 1


def first_reset(interval: str, interval_count: int, now: datetime) -> datetime | None:
    """When a new balance first resets: one interval from now, or never (lifetime)."""
    return None if interval == Interval.LIFETIME else add_intervals(now, interval, interval_count)


# --- per feature: what the balances add up to, and the check ---------------------------------------


def balance_check(
    *,
    customer: Customer,
    feature: Feature,
    required_balance=1,
    now: datetime | None = None,
    entity: Entity | None = None,
) -> CheckResult:
    """May the customer (its `entity`: that entity's balances and the customer-level ones) use
    `required_balance` of the feature now? Applies due resets first (the engine's check:
    billing/engine/decide.py, `decide_check`)."""
    return engine.check(
        customer=customer,
        feature=feature,
        required=parse_quantity(required_balance, field="required_balance"),
        now=now or timezone.now(),
        entity=entity,
    )


def balance_check_and_track(
    *,
    customer: Customer,
    feature: Feature,
    required_balance=1,
    actor: Actor,
    properties: dict | None = None,
    now: datetime | None = None,
    entity: Entity | None = None,
) -> engine.CheckAndTrack:
    """A check with send_event (balances.check, 1.2 /check and /entitled): `balance_check`'s answer, and
    when allowed, a track of `required_balance` (never for a flag), in one transaction."""
    return engine.check_and_track(
        customer=customer,
        feature=feature,
        required=parse_quantity(required_balance, field="required_balance"),
        actor=actor,
        properties=properties,
        now=now or timezone.now(),
        entity=entity,
    )


# --- edits ----------------------------------------------------------------------------------------


def _adjust(
    *,
    balance: Balance,
    actor: Actor,
    reason: str,
    action: str,
    new_value,
    next_reset_at,
    expected_remaining: Decimal | None,
    now: datetime | None,
) -> Balance:
    """Set a balance to `new_value(locked balance)`, and its reset date to `next_reset_at` unless UNSET or None:
    the rule `balance_set` and `balance_add` share."""
    reason = require_reason(reason)
    now = now or timezone.now()
    new_reset = None if next_reset_at is UNSET else next_reset_at
    with transaction.atomic():
        locked = Balance.objects.select_for_update().select_related("customer", "feature").get(pk=balance.pk)
        reset_if_due(locked, now)
        if expected_remaining is not None and locked.remaining != expected_remaining:
            raise Conflict(
                "This balance changed since you opened it (usage was tracked or someone else edited it). "
                "Check the new figures and try again.",
                code="balance_changed",
                field="new_balance",
            )
        if locked.unlimited:
            raise ServiceError("This balance is unlimited and can't be edited.", code="balance_unlimited")
        new = new_value(locked)
        _check_new_balance(locked, new)
        if new_reset is not None:
            _check_new_reset(locked, new_reset, now)
        before = _balance_snapshot(locked)
        locked.adjustment += new - locked.remaining  # recorded usage never changes; granted moves
        locked.remaining = new
        if new_reset is not None:
            locked.next_reset_at = new_reset
        locked.save(update_fields=["remaining", "adjustment", "next_reset_at", "updated_at"])
        audit_record(
            actor=actor,
            action=action,
            customer=locked.customer,
            target_type="balance",
            target_id=locked.pk,
            before=before,
            after=_balance_snapshot(locked),
            reason=reason,
        )
    return locked


def _check_new_balance(balance: Balance, new: Decimal) -> None:
    """Refuse a new balance beyond the range quantities are kept in, or negative without overage."""
    if abs(new) > MAX_ABS:  # adding can leave the range every quantity is kept within
        raise ServiceError(
            f"That would make the balance {new:,f}, beyond the largest balance (±{MAX_ABS:,f}).".replace(".000000", ""),
            code="invalid_input",
            field="new_balance",
        )
    if new < 0 and not balance.overage_allowed:
        raise ServiceError(
            "A negative balance is only possible where overage is allowed, and this feature doesn't allow it.",
            code="overage_not_allowed",
            field="new_balance",
        )


def balance_refusal(balance: Balance, new: Decimal) -> str:
    """Why `balance_set` and `balance_add` would refuse the new balance `new` ("" when they would not): a
    form's live preview says it before the person submits."""
    try:
        _check_new_balance(balance, new)
    except ServiceError as e:
        return e.message
    return ""


def _check_new_reset(balance: Balance, next_reset_at: datetime, now: datetime) -> None:
    """Refuse a reset date for a balance that never resets, or one that isn't in the future."""
    if not balance.resets:
        raise ServiceError(
            "This balance never resets (lifetime), so it has no reset date.",
            code="invalid_input",
            field="next_reset_at",
        )
    if next_reset_at <= now:
        raise ServiceError("The next reset date must be in the future.", code="invalid_input", field="next_reset_at")


def balance_set(
    *,
    balance: Balance,
    new_balance,
    actor: Actor,
    reason: str,
    next_reset_at=UNSET,
    expected_remaining: Decimal | None = None,
    now: datetime | None = None,
) -> Balance:
    """Set the balance to `new_balance` (the dashboard popup and `balances.update`).

    Positive: allowance left; negative: usage to charge (overage only). Recorded as
    `adjustment += new - old`, so usage stays as recorded and granted moves.
    """
    new = parse_quantity(new_balance, field="new_balance")
    return _adjust(
        balance=balance,
        actor=actor,
        reason=reason,
        action=AuditAction.BALANCE_SET,
        new_value=lambda b: new,
        next_reset_at=next_reset_at,
        expected_remaining=expected_remaining,
        now=now,
    )


def balance_add(
    *,
    balance: Balance,
    delta,
    actor: Actor,
    reason: str,
    next_reset_at=UNSET,
    expected_remaining: Decimal | None = None,
    now: datetime | None = None,
) -> Balance:
    """Add `delta` (may be negative) to the balance: the same rule as `balance_set`."""
    amount = parse_quantity(delta, field="amount")
    return _adjust(
        balance=balance,
        actor=actor,
        reason=reason,
        action=AuditAction.BALANCE_ADD,
        new_value=lambda b: b.remaining + amount,
        next_reset_at=next_reset_at,
        expected_remaining=expected_remaining,
        now=now,
    )


def _check_grant_dates(
    *, interval: str, next_reset_at: datetime | None, expires_at: datetime | None, now: datetime
) -> None:
    if expires_at is not None and expires_at <= now:
        raise ServiceError("The expiry must be in the future.", code="invalid_input", field="expires_at")
    if next_reset_at is None:
        return
    if interval == Interval.LIFETIME:
        raise ServiceError(
            "A one-off balance never resets, so it has no reset date.", code="invalid_input", field="next_reset_at"
        )
    if next_reset_at <= now:
        raise ServiceError("The next reset date must be in the future.", code="invalid_input", field="next_reset_at")


@transaction.atomic
def balance_create(
    *,
    customer: Customer,
    feature: Feature,
    actor: Actor,
    reason: str,
    granted=0,
    unlimited: bool = False,
    interval: str = Interval.LIFETIME,
    interval_count: int = 1,
    overage_allowed: bool = False,
    next_reset_at: datetime | None = None,
    expires_at: datetime | None = None,
    api_id: str = "",
    now: datetime | None = None,
) -> Balance:
    """A grant of a feature outside any plan (Create Balance, `balances.create`): one-off, or resetting every
    `interval` from `next_reset_at` (default: one interval from now), until `expires_at` if given. Track draws
    it down beside the plan's balances of the feature (`draw_order`). `api_id`: the API caller's balance_id,
    which no other balance of the customer may have."""
    reason = require_reason(reason)
    now = now or timezone.now()
    amount = ZERO if unlimited else parse_quantity(granted, field="granted", allow_negative=False)
    if interval not in Interval.values:
        raise ServiceError(f"Unknown interval {interval!r}.", code="invalid_input", field="interval")
    if not 1 <= int(interval_count) <= 1000:
        raise ServiceError("The interval count must be 1 to 1000.", code="invalid_input", field="interval_count")
    if feature.archived:
        raise ServiceError(f"{feature.name} is archived.", code="invalid_input", field="feature")
    _check_grant_dates(interval=interval, next_reset_at=next_reset_at, expires_at=expires_at, now=now)
    if api_id:
        Customer.objects.select_for_update().filter(pk=customer.pk).first()  # one grant per id, even when raced
        if Balance.objects.filter(customer=customer, api_id=api_id).exists():
            raise Conflict(
                f"{customer.customer_id} already has a balance {api_id!r}.", code="balance_exists", field="balance_id"
            )
    balance = Balance.objects.create(
        customer=customer,
        feature=feature,
        customer_product=None,
        allowance=amount,
        remaining=amount,
        unlimited=unlimited,
        overage_allowed=overage_allowed,
        interval=interval,
        interval_count=interval_count,
        next_reset_at=next_reset_at or first_reset(interval, interval_count, now),
        expires_at=expires_at,
        api_id=api_id,
        created_at=now,
    )
    audit_record(
        actor=actor,
        action=AuditAction.BALANCE_CREATE,
        customer=customer,
        target_type="balance",
        target_id=balance.pk,
        after=_balance_snapshot(balance),
        reason=reason,
    )
    return balance


@transaction.atomic
def balance_delete(*, balance: Balance, actor: Actor, reason: str, now: datetime | None = None) -> None:
    """Delete a granted balance (one outside any plan). Its recorded usage stays in the events; a plan's
    balance goes only with its plan (Customize changes it)."""
    reason = require_reason(reason)
    now = now or timezone.now()
    locked = Balance.objects.select_for_update().select_related("customer", "feature").filter(pk=balance.pk).first()
    if locked is None:
        raise Conflict("This balance no longer exists (deleted or expired).", code="balance_not_found")
    if not locked.is_granted:
        raise ServiceError("This balance comes with a plan: customize the plan to change it.", code="balance_of_a_plan")
    reset_if_due(locked, now)
    before = _balance_snapshot(locked)
    pk = locked.pk
    locked.delete()
    audit_record(
        actor=actor,
        action=AuditAction.BALANCE_DELETE,
        customer=locked.customer,
        target_type="balance",
        target_id=pk,
        before=before,
        reason=reason,
    )
