"""A customer's plan lifecycle, as Autumn runs it: attach (a plan replaces the plan of its group, add-ons
stack), upgrade now, downgrade at the period end, cancel now or at the period end, uncancel, and the
period-end transitions (a cancellation expires, a scheduled plan starts, a trial ends and its plan becomes
active, an active plan rolls its period). A plan with a free trial starts `trialing` for a customer who never had
a trial of it (`trial_available`).

The dashboard and the API both go through `plan_preview`, `plan_attach`, `plan_cancel` and `plan_uncancel`;
`plans_roll_due` is applied before each of them, before every read of a customer (with its due resets:
`billing.services.current`), and in bulk by `manage.py reset_balances`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.intervals import add_intervals
from billing.models import (
    LIVE_PRODUCT_STATUSES,
    CustomerProduct,
    CustomerProductStatus,
    Product,
)
from billing.plan_preview import (
    CANCEL_END_OF_CYCLE,
    CANCEL_IMMEDIATELY,
    CHECKOUT,
    END_OF_CYCLE,
    GRANT_FREE,
    NO_CHARGE,
    NOW,
    UNCANCEL,
    UPDATE_SUBSCRIPTION,
    PlanPreview,
    check_cancellable_at_period_end,
    check_uncancellable,
    live_plans,
    period_end_of,
    preview_attach,
    preview_cancel,
    same_plan_group,
    scheduled_of_group,
)
from billing.services.products import create_balances, lock_customer_plans, product_attach
from billing.services.subscriptions import customer_product_update
from billing.stripe_io import subscriptions as stripe_subscriptions
from billing.stripe_io.config import is_configured
from customers.audit import SYSTEM, Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import Customer
from customers.validation import require_reason

PERIOD_ENDED = "Billing period ended"
TRIAL_ENDED = "Free trial ended"

# The service's words: when a change happens, how it is paid, what a cancel does (its callers pass these).
__all__ = [
    "CANCEL_END_OF_CYCLE",
    "CANCEL_IMMEDIATELY",
    "CHECKOUT",
    "END_OF_CYCLE",
    "GRANT_FREE",
    "NO_CHARGE",
    "NOW",
    "UNCANCEL",
    "UPDATE_SUBSCRIPTION",
    "AttachResult",
    "cancel_preview",
    "due_products",
    "is_roll_due",
    "plan_attach",
    "plan_cancel",
    "plan_preview",
    "plan_uncancel",
    "plans_roll_due",
]


# --- previews: due periods roll first, then the read answers --------------------------------------------


def plan_preview(*, customer: Customer, product: Product, when: str | None = None, now: datetime | None = None):
    """What attaching `product` would do now (`billing.plan_preview.preview_attach`), once the customer's due
    periods have rolled."""
    now = now or timezone.now()
    plans_roll_due(customer=customer, now=now)
    return preview_attach(customer=customer, product=product, when=when, now=now)


def cancel_preview(
    *, customer: Customer, customer_product: CustomerProduct, action: str, now: datetime | None = None
) -> PlanPreview:
    """What cancelling or uncancelling `customer_product` would do (`billing.plan_preview.preview_cancel`), once
    the customer's due periods have rolled."""
    now = now or timezone.now()
    plans_roll_due(customer=customer, now=now)
    return preview_cancel(customer=customer, customer_product=customer_product, action=action, now=now)


# --- attach ---------------------------------------------------------------------------------------------


@dataclass
class AttachResult:
    preview: PlanPreview
    customer_product: CustomerProduct | None  # None when a checkout is still to be paid
    method: str


@transaction.atomic
def plan_attach(
    *,
    customer: Customer,
    product: Product,
    actor: Actor,
    reason: str = "",
    when: str | None = None,
    method: str | None = None,
    now: datetime | None = None,
) -> AttachResult:
    """Attach `product` as `plan_preview` describes it.

    `method` (for a paid product): "update_subscription" changes the plan of the customer's Stripe
    subscription with proration (after the commit), "grant_free" attaches it with no charge (a reason is
    required). "checkout" changes nothing here: the caller creates the Checkout Session (outside the
    transaction) and the plan is attached when Stripe reports the payment.

    A downgrade at the end of the cycle marks the current plan as cancelling and the new one as scheduled
    for the period end; nothing is charged now."""
    now = now or timezone.now()
    lock_customer_plans(customer.pk)  # one change at a time per customer, whatever it holds
    live_plans(customer, lock=True)
    preview = plan_preview(customer=customer, product=product, when=when, now=now)
    method = method or preview.default_method
    if method not in preview.methods:
        raise ServiceError(_method_refusal(preview, method), code=_method_code(preview, method), field="method")
    if method == GRANT_FREE:
        reason = require_reason(reason)
    if method == CHECKOUT:
        return AttachResult(preview, None, method)
    if preview.when == END_OF_CYCLE:
        scheduled = _schedule(preview, actor=actor, reason=reason, now=now)
        if method == GRANT_FREE:
            scheduled.granted_free = True
            scheduled.save(update_fields=["granted_free"])
        return AttachResult(preview, scheduled, method)
    for scheduled in scheduled_of_group(customer, product, lock=True):
        _drop_scheduled(scheduled, actor=actor, reason=reason or f"{product.name} attached instead", now=now)
    if method == UPDATE_SUBSCRIPTION:
        old = preview.subscription
        cp = product_attach(customer=customer, product=product, actor=actor, now=now, reason=reason, replace=old)
        cp.canceled_at, cp.granted_free = None, False  # an upgrade is paid for, and ends any cancellation
        cp.save(update_fields=["canceled_at", "granted_free"])
        stripe_subscriptions.plan_changed(customer_product=cp, prorate=True)
    else:
        trial = {"status": CustomerProductStatus.TRIALING, "trial_ends_at": preview.trial_ends_at}
        cp = product_attach(
            customer=customer,
            product=product,
            actor=actor,
            now=now,
            reason=reason,
            **(trial if preview.trial_ends_at and method != GRANT_FREE else {}),
        )
        if method == GRANT_FREE:
            cp.granted_free = True
            cp.save(update_fields=["granted_free"])
    return AttachResult(preview, cp, method)


def _method_code(preview: PlanPreview, method: str) -> str:
    if method in (CHECKOUT, UPDATE_SUBSCRIPTION) and not is_configured(preview.customer.env):
        return "stripe_not_connected"
    return "invalid_input"


def _method_refusal(preview: PlanPreview, method: str) -> str:
    name, env = preview.product.name, preview.customer.env
    if method in (CHECKOUT, UPDATE_SUBSCRIPTION) and not is_configured(env):
        return (
            f"{name} is a paid plan and Stripe is not connected for {env}; grant it for free (with a reason) instead."
        )
    if method == UPDATE_SUBSCRIPTION:
        return f"{preview.customer.customer_id} has no Stripe subscription to update; send a checkout link instead."
    if method == CHECKOUT:
        return f"{preview.customer.customer_id} already pays through a Stripe subscription; update it instead."
    if method == GRANT_FREE:
        return f"{name} is free; there is nothing to grant."
    return f"Unknown way to attach {name}: {method!r}."


def _schedule(preview: PlanPreview, *, actor: Actor, reason: str, now: datetime) -> CustomerProduct:
    """The downgrade at the period end: the current plan cancelling, the new one scheduled (any earlier
    scheduled plan of the group gives way)."""
    old = preview.outgoing[0]
    for scheduled in scheduled_of_group(preview.customer, preview.product, lock=True):
        _drop_scheduled(scheduled, actor=actor, reason=reason or f"{preview.product.name} scheduled instead", now=now)
    if old.canceled_at is None:
        customer_product_update(customer_product=old, actor=actor, reason=reason, now=now, canceled_at=now)
    cp = CustomerProduct.objects.create(
        customer=preview.customer,
        product=preview.product,
        status=CustomerProductStatus.SCHEDULED,
        started_at=preview.effective_at,
    )
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_SCHEDULE,
        customer=preview.customer,
        target_type="product",
        target_id=preview.product.product_id,
        before={"products": [old.product.product_id]},
        after={"product": preview.product.product_id, "version": preview.product.version, "starts_at": cp.started_at},
        reason=reason,
    )
    return cp


def _drop_scheduled(cp: CustomerProduct, *, actor: Actor, reason: str, now: datetime) -> None:
    """A scheduled plan that will not start after all (ended before it began: no balances to remove)."""
    customer_product_update(
        customer_product=cp, actor=actor, reason=reason, now=now, status=CustomerProductStatus.EXPIRED
    )


# --- cancel and uncancel -------------------------------------------------------------------------------


def _locked_product(customer: Customer, customer_product: CustomerProduct) -> CustomerProduct:
    locked = (
        CustomerProduct.objects.select_for_update()
        .select_related("product", "customer")
        .filter(pk=customer_product.pk, customer=customer)
        .first()
    )
    if locked is None or locked.status == CustomerProductStatus.EXPIRED:
        name = customer_product.product.name
        raise Conflict(f"{name} is no longer active for {customer.customer_id}.", code="product_not_active")
    return locked


@transaction.atomic
def plan_cancel(
    *,
    customer: Customer,
    customer_product: CustomerProduct,
    actor: Actor,
    when: str,
    reason: str = "",
    now: datetime | None = None,
) -> CustomerProduct:
    """Cancel a product now (its balances end; the group's default plan comes back for a plan) or at the
    end of its billing cycle (status Cancelling, `canceled_at` set, balances run to the period end).

    Cancelling a scheduled plan drops it and keeps the current plan (the downgrade is called off)."""
    now = now or timezone.now()
    lock_customer_plans(customer.pk)
    plans_roll_due(customer=customer, now=now)
    cp = _locked_product(customer, customer_product)
    if when not in (NOW, END_OF_CYCLE):
        raise ServiceError("Choose when: now or at the end of the billing cycle.", code="invalid_input", field="when")
    if cp.status == CustomerProductStatus.SCHEDULED:
        _drop_scheduled(cp, actor=actor, reason=reason or "Cancelled before it started", now=now)
        for current in _cancelling_of_group(customer, cp.product):
            _uncancel(current, actor=actor, reason=reason or f"{cp.product.name} cancelled", now=now)
        return cp
    scheduled_plans = scheduled_of_group(customer, cp.product, lock=True)
    if when == END_OF_CYCLE:
        check_cancellable_at_period_end(cp, pending_downgrade=bool(scheduled_plans))
    for scheduled in scheduled_plans:
        _drop_scheduled(scheduled, actor=actor, reason=reason or f"{cp.product.name} cancelled", now=now)
    if when == NOW:
        customer_product_update(
            customer_product=cp, actor=actor, reason=reason, now=now, status=CustomerProductStatus.EXPIRED
        )
        stripe_subscriptions.cancelled(customer_product=cp, at_period_end=False)
        return cp
    if cp.canceled_at is None:
        customer_product_update(customer_product=cp, actor=actor, reason=reason, now=now, canceled_at=now)
    stripe_subscriptions.cancelled(customer_product=cp, at_period_end=True)
    return cp


def _cancelling_of_group(customer: Customer, product: Product) -> list[CustomerProduct]:
    return [cp for cp in live_plans(customer, lock=True) if same_plan_group(cp.product, product) and cp.canceled_at]


@transaction.atomic
def plan_uncancel(
    *, customer: Customer, customer_product: CustomerProduct, actor: Actor, reason: str = "", now=None
) -> CustomerProduct:
    """Reverse a pending cancellation (or a pending downgrade: its scheduled plan is dropped)."""
    now = now or timezone.now()
    lock_customer_plans(customer.pk)
    plans_roll_due(customer=customer, now=now)
    cp = _locked_product(customer, customer_product)
    check_uncancellable(cp)
    for scheduled in scheduled_of_group(customer, cp.product, lock=True):
        _drop_scheduled(scheduled, actor=actor, reason=reason or f"{cp.product.name} uncancelled", now=now)
    return _uncancel(cp, actor=actor, reason=reason, now=now)


def _uncancel(cp: CustomerProduct, *, actor: Actor, reason: str, now: datetime) -> CustomerProduct:
    customer_product_update(customer_product=cp, actor=actor, reason=reason, now=now, canceled_at=None)
    stripe_subscriptions.uncancelled(customer_product=cp)
    return cp


# --- the period end --------------------------------------------------------------------------------------


def due_products(now: datetime):
    """The products whose period end (or trial end, or start) has passed."""
    live_due = Q(status__in=LIVE_PRODUCT_STATUSES, current_period_end__lte=now)
    live_due |= Q(status=CustomerProductStatus.TRIALING, trial_ends_at__lte=now)
    scheduled_due = Q(status=CustomerProductStatus.SCHEDULED, started_at__lte=now)
    return CustomerProduct.objects.filter(live_due | scheduled_due)


def is_roll_due(cps: list[CustomerProduct], now: datetime) -> bool:
    """Whether any of these products (already read) has a period end or a start that has passed."""
    return any(
        (cp.status in LIVE_PRODUCT_STATUSES and cp.current_period_end and cp.current_period_end <= now)
        or (cp.status == CustomerProductStatus.TRIALING and cp.trial_ends_at and cp.trial_ends_at <= now)
        or (cp.status == CustomerProductStatus.SCHEDULED and cp.started_at <= now)
        for cp in cps
    )


def plans_roll_due(*, customer: Customer | None = None, now: datetime | None = None) -> int:
    """Apply every period end that has passed (of one customer, or all): a pending cancellation expires,
    a scheduled plan starts, an active plan rolls on to its next period. Each change is audited as a
    system action. Returns how many products changed."""
    now = now or timezone.now()
    due = due_products(now)
    if customer is not None:
        due = due.filter(customer=customer)
    count = 0
    for customer_pk in list(due.values_list("customer_id", flat=True).distinct().order_by("customer_id")):
        count += _roll_customer(customer_pk, now)
    return count


@transaction.atomic
def _roll_customer(customer_pk: int, now: datetime) -> int:
    count = 0
    lock_customer_plans(customer_pk)
    rows = (
        due_products(now)
        .select_for_update()
        .filter(customer_id=customer_pk)
        .select_related("product", "customer")
        .order_by("current_period_end", "started_at", "id")
    )
    for cp in rows:
        if cp.status == CustomerProductStatus.SCHEDULED:
            continue  # started with the plan it follows, below, or alone after it
        count += 1
        if cp.canceled_at is not None:
            successor = next(iter(scheduled_of_group(cp.customer, cp.product, lock=True)), None)
            if successor is not None and successor.started_at <= now:
                _start_scheduled(successor, after=cp, now=now)
                count += 1
            customer_product_update(
                customer_product=cp, actor=SYSTEM, reason=PERIOD_ENDED, now=now, status=CustomerProductStatus.EXPIRED
            )
        elif cp.status == CustomerProductStatus.TRIALING and cp.trial_ends_at and cp.trial_ends_at <= now:
            _end_trial(cp, now)
        else:
            _roll_period(cp, now)
    for cp in (
        due_products(now)
        .filter(customer_id=customer_pk, status=CustomerProductStatus.SCHEDULED)
        .select_related("product", "customer")
    ):
        count += 1
        _start_scheduled(cp, after=None, now=now)
    return count


def _roll_period(cp: CustomerProduct, now: datetime) -> None:
    recurring = cp.product.recurring_price
    start, end = cp.current_period_start, cp.current_period_end
    if recurring is None:
        customer_product_update(
            customer_product=cp, actor=SYSTEM, reason=PERIOD_ENDED, now=now, current_period_end=None
        )
        return
    while end <= now:
        start, end = end, add_intervals(end, recurring.interval, recurring.interval_count)
    customer_product_update(
        customer_product=cp,
        actor=SYSTEM,
        reason=PERIOD_ENDED,
        now=now,
        current_period_start=start,
        current_period_end=end,
    )


def _end_trial(cp: CustomerProduct, now: datetime) -> None:
    """A trial ends: the plan becomes active, its first paid period starting when the trial ended."""
    start = cp.trial_ends_at
    end = period_end_of(cp.product, start)
    while end is not None and end <= now:
        start, end = end, period_end_of(cp.product, end)
    customer_product_update(
        customer_product=cp,
        actor=SYSTEM,
        reason=TRIAL_ENDED,
        now=now,
        status=CustomerProductStatus.ACTIVE,
        current_period_start=start if end else None,
        current_period_end=end,
    )


def _start_scheduled(cp: CustomerProduct, *, after: CustomerProduct | None, now: datetime) -> None:
    """A scheduled plan starts at its start date: its first period from then, its balances from now. It takes
    over the Stripe subscription of the plan it follows."""
    start = cp.started_at
    end = period_end_of(cp.product, start)
    while end is not None and end <= now:
        start, end = end, period_end_of(cp.product, end)
    subscription = after.stripe_subscription_id if after is not None else ""
    if after is not None and subscription:
        CustomerProduct.objects.filter(pk=after.pk).update(stripe_subscription_id="")
        after.stripe_subscription_id = ""
    cp.status = CustomerProductStatus.ACTIVE
    cp.current_period_start = start if end else None
    cp.current_period_end = end
    cp.stripe_subscription_id = subscription
    cp.save(update_fields=["status", "current_period_start", "current_period_end", "stripe_subscription_id"])
    create_balances(cp, carried={}, kept_resets={}, now=now)
    audit_record(
        actor=SYSTEM,
        action=AuditAction.PRODUCT_UPDATE,
        customer=cp.customer,
        target_type="product",
        target_id=cp.product.product_id,
        before={"status": CustomerProductStatus.SCHEDULED},
        after={"status": CustomerProductStatus.ACTIVE, "current_period_end": end},
        reason=PERIOD_ENDED,
    )
    if subscription:
        stripe_subscriptions.plan_changed(customer_product=cp, prorate=False)
