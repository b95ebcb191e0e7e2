"""A customer's plan lifecycle, as Autumn runs it: attach (a plan replaces the plan of its group, add-ons
stack), upgrade now, downgrade at the period end, cancel now or at the period end, uncancel, and the
period-end transitions (a cancellation expires, a scheduled plan starts, a trial ends and its plan becomes
active, an active plan rolls its period). A plan with a free trial starts `trialing` for a customer who never had
a trial of it (`trial_available`).

The dashboard and the API both go through `plan_preview`, `plan_attach`, `plan_cancel` and `plan_uncancel`;
`plans_roll_due` is applied lazily before each of them, on the customer page and the API's reads, and in
bulk by `manage.py reset_balances`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.intervals import add_intervals
from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    Feature,
    FeatureType,
    Product,
)
from billing.quantities import ZERO
from billing.services.products import (
    _create_balances,
    _period_end,
    _same_plan_group,
    customer_product_update,
    lock_customer_plans,
    product_attach,
)
from billing.stripe_io import subscriptions as stripe_subscriptions
from billing.stripe_io.config import is_configured
from customers.audit import SYSTEM, Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import Customer
from customers.validation import require_reason

NOW, END_OF_CYCLE = "now", "end_of_cycle"
CHECKOUT, UPDATE_SUBSCRIPTION, GRANT_FREE, NO_CHARGE = "checkout", "update_subscription", "grant_free", "no_charge"
CANCEL_IMMEDIATELY, CANCEL_END_OF_CYCLE, UNCANCEL = "cancel_immediately", "cancel_end_of_cycle", "uncancel"
PERIOD_ENDED = "Billing period ended"
TRIAL_ENDED = "Free trial ended"


def recurring_amount(product: Product) -> int:
    price = product.recurring_price
    return price.amount if price is not None else 0


def currency_of(product: Product) -> str:
    return next((p.currency for p in product.prices.all()), "usd")


def is_upgrade(old: Product, new: Product) -> bool:
    """Autumn's rule: an upgrade when the new plan's recurring price is higher, or the old one is free."""
    return old.is_free or recurring_amount(new) > recurring_amount(old)


# --- preview ------------------------------------------------------------------------------------------


@dataclass
class BalanceChange:
    """One feature's balance before → after the change. None: not had (before) or lost (after)."""

    feature: Feature
    before: Decimal | None
    after: Decimal | None
    unlimited_before: bool = False
    unlimited_after: bool = False
    usage: Decimal = ZERO  # carried over to the new balance

    @property
    def kind(self) -> str:
        if self.before is None and not self.unlimited_before:
            return "gained"
        if self.after is None and not self.unlimited_after:
            return "lost"
        if (self.before, self.unlimited_before) == (self.after, self.unlimited_after):
            return "unchanged"
        return "changed"

    @property
    def remaining_after(self) -> Decimal | None:
        if self.after is None or self.feature.type == FeatureType.BOOLEAN:
            return None
        return max(ZERO, self.after - self.usage)


@dataclass
class PlanPreview:
    """What a change does, before it is made: the dashboard's popup and the API's preview answer."""

    customer: Customer
    product: Product
    action: str  # attach | upgrade | downgrade | add_on | cancel_immediately | cancel_end_of_cycle | uncancel
    when: str  # now | end_of_cycle
    effective_at: datetime
    outgoing: list[CustomerProduct] = field(default_factory=list)
    incoming: list[Product] = field(default_factory=list)
    balances: list[BalanceChange] = field(default_factory=list)
    due_today: int = 0
    next_invoice_amount: int = 0
    next_invoice_at: datetime | None = None
    currency: str = "usd"
    methods: list[str] = field(default_factory=list)  # how it may be paid: checkout, update_subscription, …
    subscription: CustomerProduct | None = None  # the one whose Stripe subscription an update changes
    trial_ends_at: datetime | None = None  # the plan starts with its free trial, ending then

    @property
    def needs_payment(self) -> bool:
        return NO_CHARGE not in self.methods

    @property
    def default_method(self) -> str:
        return self.methods[0]


def _live(customer: Customer, *, lock: bool = False) -> list[CustomerProduct]:
    qs = CustomerProduct.objects.filter(customer=customer, status__in=LIVE_PRODUCT_STATUSES).order_by("id")
    if lock:
        qs = qs.select_for_update()
    return list(qs.select_related("product").prefetch_related("product__prices", "product__items__feature"))


def _scheduled(customer: Customer, product: Product, *, lock: bool = False) -> list[CustomerProduct]:
    """The customer's scheduled plans of `product`'s group (add-ons are never scheduled)."""
    if product.is_add_on:
        return []
    qs = CustomerProduct.objects.filter(
        customer=customer,
        status=CustomerProductStatus.SCHEDULED,
        product__group=product.group,
        product__is_add_on=False,
    ).order_by("id")
    if lock:
        qs = qs.select_for_update()
    return list(qs.select_related("product"))


def _balances_of(cps: list[CustomerProduct]) -> dict[int, list[Balance]]:
    by_feature: dict[int, list[Balance]] = {}
    for b in Balance.objects.filter(customer_product__in=cps).select_related("feature").order_by("id"):
        by_feature.setdefault(b.feature_id, []).append(b)
    return by_feature


def _balance_changes(outgoing: list[CustomerProduct], incoming: list[Product], *, carry: bool) -> list[BalanceChange]:
    """Each feature of the outgoing products' balances and the incoming products' items, before → after."""
    old = _balances_of(outgoing)
    new: dict[int, tuple[Feature, Decimal, bool]] = {}
    for product in incoming:
        for item in product.items.all():
            included = ZERO if item.feature.type == FeatureType.BOOLEAN else item.included
            prior = new.get(item.feature_id)
            new[item.feature_id] = (
                item.feature,
                included + (prior[1] if prior else ZERO),
                item.unlimited or bool(prior and prior[2]),
            )
    changes = []
    for fid in list(dict.fromkeys([*old, *new])):
        balances = old.get(fid, [])
        feature = balances[0].feature if balances else new[fid][0]
        before = sum((b.granted for b in balances), ZERO) if balances else None
        unlimited_before = any(b.unlimited for b in balances)
        usage = sum((b.usage for b in balances), ZERO) if carry else ZERO
        if fid in new:
            _, after, unlimited_after = new[fid]
        else:
            after, unlimited_after = None, False
        changes.append(BalanceChange(feature, before, after, unlimited_before, unlimited_after, usage))
    return sorted(changes, key=lambda c: c.feature.name.lower())


def _prorated(amount: int, cp: CustomerProduct, now: datetime) -> int:
    """`amount` for what is left of `cp`'s current period."""
    start, end = cp.current_period_start, cp.current_period_end
    if not start or not end or end <= now or end <= start:
        return 0
    fraction = Decimal((end - now).total_seconds()) / Decimal((end - start).total_seconds())
    return int((Decimal(amount) * fraction).to_integral_value(ROUND_HALF_UP))


def _one_off_amount(product: Product) -> int:
    return sum(p.amount for p in product.prices.all() if p.type == "fixed" and not p.is_recurring)


def plan_preview(*, customer: Customer, product: Product, when: str | None = None, now: datetime | None = None):
    """What attaching `product` would do now: the plan it replaces, balances before → after (with the usage
    that carries over), the amount due today, the next invoice, and how it may be paid.

    `when` is "now" or "end_of_cycle" (a downgrade's default). Raises ServiceError/Conflict for what
    `plan_attach` would refuse, so a preview never promises a change that cannot be made."""
    now = now or timezone.now()
    plans_roll_due(customer=customer, now=now)
    _check_attachable(customer, product)
    live = _live(customer)
    if any(cp.product_id == product.pk for cp in live):
        raise Conflict(f"{customer.customer_id} already has {product.name}.", code="product_already_attached")
    replaced = [cp for cp in live if _same_plan_group(cp.product, product)]
    old = replaced[0] if replaced else None
    if product.is_add_on:
        action = "add_on"
    elif old is None:
        action = "attach"
    else:
        action = "upgrade" if is_upgrade(old.product, product) else "downgrade"
    if when is None:
        when = END_OF_CYCLE if action == "downgrade" and old.current_period_end else NOW
    if when not in (NOW, END_OF_CYCLE):
        raise ServiceError("Choose when: now or at the end of the billing period.", code="invalid_input", field="when")
    if when == END_OF_CYCLE and (action != "downgrade" or not old.current_period_end):
        raise ServiceError(
            "Only a downgrade of a plan with a billing period can wait for the end of the period.",
            code="invalid_input",
            field="when",
        )
    effective_at = old.current_period_end if when == END_OF_CYCLE else now
    preview = PlanPreview(
        customer=customer,
        product=product,
        action=action,
        when=when,
        effective_at=effective_at,
        outgoing=replaced,
        incoming=[product],
        currency=currency_of(product),
    )
    preview.balances = _balance_changes(replaced, [product], carry=when == NOW)
    price = recurring_amount(product)
    subscribed = old if old is not None and old.stripe_subscription_id else None
    if when == NOW and not subscribed and trial_available(customer, product):
        preview.trial_ends_at = product.trial_end(now)
    if product.is_free:
        preview.methods = [NO_CHARGE]
    elif preview.trial_ends_at and not product.trial_card_required:
        # Autumn's trial without a card: the plan starts now, nothing is paid until the trial ends.
        preview.methods = [NO_CHARGE]
    elif when == END_OF_CYCLE:  # nothing is paid now; the subscription (if any) changes at the period end
        preview.methods = [UPDATE_SUBSCRIPTION, GRANT_FREE] if subscribed else [GRANT_FREE]
        preview.subscription = subscribed
    else:
        connected = is_configured(customer.env)
        preview.methods = ([UPDATE_SUBSCRIPTION] if connected and subscribed else []) + (
            [CHECKOUT] if connected and not subscribed else []
        )
        preview.methods.append(GRANT_FREE)
        preview.subscription = subscribed
        if preview.methods == [GRANT_FREE]:
            preview.trial_ends_at = None  # the trial needs a card, taken by Stripe: a grant is not a trial
    if when == END_OF_CYCLE:
        preview.next_invoice_at = effective_at
        preview.next_invoice_amount = price
    elif preview.default_method == UPDATE_SUBSCRIPTION:
        preview.due_today = max(0, _prorated(price, old, now) - _prorated(recurring_amount(old.product), old, now))
        preview.next_invoice_at, preview.next_invoice_amount = old.current_period_end, price
    elif preview.trial_ends_at and preview.default_method in (CHECKOUT, NO_CHARGE):
        preview.next_invoice_at, preview.next_invoice_amount = preview.trial_ends_at, price + _one_off_amount(product)
    elif preview.default_method == CHECKOUT:
        preview.due_today = price + _one_off_amount(product)
        preview.next_invoice_at = _period_end(product, now)
        preview.next_invoice_amount = price if preview.next_invoice_at else 0
    else:
        preview.next_invoice_at = _period_end(product, now)
    return preview


def trial_available(customer: Customer, product: Product) -> bool:
    """Whether attaching `product` starts its free trial: it has one, and the customer never had a trial of
    that plan (of any version, or a custom copy of it)."""
    if not product.has_trial:
        return False
    return not CustomerProduct.objects.filter(
        customer=customer, product__product_id=product.product_id, trial_ends_at__isnull=False
    ).exists()


def _check_attachable(customer: Customer, product: Product) -> None:
    if product.archived and not product.custom_for_id:
        raise ServiceError(f"{product.name} is archived.", code="product_not_found", status=404)
    if product.custom_for_id and product.custom_for_id != customer.pk:
        raise ServiceError("That custom product belongs to another customer.", code="product_not_found", status=404)


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
    _live(customer, lock=True)
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
    for scheduled in _scheduled(customer, product, lock=True):
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
    for scheduled in _scheduled(preview.customer, preview.product, lock=True):
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


def _default_plan(customer: Customer, product: Product) -> Product | None:
    """The plan that comes back when the customer's last plan of `product`'s group ends."""
    if product.is_add_on:
        return None
    defaults = Product.objects.defaults().filter(is_add_on=False, group=product.group).exclude(pk=product.pk)
    return defaults.prefetch_related("prices", "items__feature").first()


def cancel_preview(
    *, customer: Customer, customer_product: CustomerProduct, action: str, now: datetime | None = None
) -> PlanPreview:
    """What cancelling (now or at the end of the cycle) or uncancelling `customer_product` would do. Raises what
    `plan_cancel` / `plan_uncancel` would refuse."""
    now = now or timezone.now()
    plans_roll_due(customer=customer, now=now)
    cp = CustomerProduct.objects.select_related("product").filter(pk=customer_product.pk, customer=customer).first()
    if cp is None or cp.status == CustomerProductStatus.EXPIRED:
        name = customer_product.product.name
        raise Conflict(f"{name} is no longer active for {customer.customer_id}.", code="product_not_active")
    product = cp.product
    preview = PlanPreview(customer=customer, product=product, action=action, when=NOW, effective_at=now)
    preview.currency, preview.methods = currency_of(product), [NO_CHARGE]
    if action == UNCANCEL:
        _check_uncancellable(cp)
        preview.balances = _balance_changes([cp], [product], carry=True)
        preview.next_invoice_at, preview.next_invoice_amount = cp.current_period_end, recurring_amount(product)
        preview.incoming = [product]
        return preview
    if action not in (CANCEL_IMMEDIATELY, CANCEL_END_OF_CYCLE):
        raise ServiceError(f"Unknown cancel action {action!r}.", code="invalid_input", field="cancel_action")
    if action == CANCEL_END_OF_CYCLE:
        _check_cancellable_at_period_end(cp, pending_downgrade=bool(_scheduled(customer, product)))
        preview.when, preview.effective_at = END_OF_CYCLE, cp.current_period_end
    preview.outgoing = [cp]
    default = _default_plan(customer, product)
    others = [o for o in _live(customer) if o.pk != cp.pk and _same_plan_group(o.product, product)]
    preview.incoming = [default] if default is not None and not others else []
    preview.balances = _balance_changes([cp], preview.incoming, carry=False)
    return preview


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
    scheduled_plans = _scheduled(customer, cp.product, lock=True)
    if when == END_OF_CYCLE:
        _check_cancellable_at_period_end(cp, pending_downgrade=bool(scheduled_plans))
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


def _check_cancellable_at_period_end(cp: CustomerProduct, *, pending_downgrade: bool) -> None:
    """A product can be cancelled at its period end when it has one and is not already ending there (a pending
    downgrade is called off instead: the product still ends at its period end)."""
    if not cp.current_period_end:
        raise ServiceError(
            f"{cp.product.name} has no billing period to run to; cancel it immediately instead.",
            code="invalid_input",
            field="when",
        )
    if cp.canceled_at is not None and not pending_downgrade:
        raise Conflict(f"{cp.product.name} is already cancelling.", code="product_already_cancelling")


def _check_uncancellable(cp: CustomerProduct) -> None:
    if cp.status not in LIVE_PRODUCT_STATUSES or cp.canceled_at is None:
        raise Conflict(f"{cp.product.name} has no pending cancellation to undo.", code="nothing_to_uncancel")


def _cancelling_of_group(customer: Customer, product: Product) -> list[CustomerProduct]:
    return [cp for cp in _live(customer, lock=True) if _same_plan_group(cp.product, product) and cp.canceled_at]


@transaction.atomic
def plan_uncancel(
    *, customer: Customer, customer_product: CustomerProduct, actor: Actor, reason: str = "", now=None
) -> CustomerProduct:
    """Reverse a pending cancellation (or a pending downgrade: its scheduled plan is dropped)."""
    now = now or timezone.now()
    lock_customer_plans(customer.pk)
    plans_roll_due(customer=customer, now=now)
    cp = _locked_product(customer, customer_product)
    _check_uncancellable(cp)
    for scheduled in _scheduled(customer, cp.product, lock=True):
        _drop_scheduled(scheduled, actor=actor, reason=reason or f"{cp.product.name} uncancelled", now=now)
    return _uncancel(cp, actor=actor, reason=reason, now=now)


def _uncancel(cp: CustomerProduct, *, actor: Actor, reason: str, now: datetime) -> CustomerProduct:
    customer_product_update(customer_product=cp, actor=actor, reason=reason, now=now, canceled_at=None)
    stripe_subscriptions.uncancelled(customer_product=cp)
    return cp


# --- the period end --------------------------------------------------------------------------------------


def _due(now: datetime):
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


def customers_with_due_plans(customer_pks: list[int], now: datetime) -> set[int]:
    """Which of these customers have a period end or a start that has passed (one query)."""
    return set(_due(now).filter(customer_id__in=customer_pks).values_list("customer_id", flat=True))


def plans_roll_due(*, customer: Customer | None = None, now: datetime | None = None) -> int:
    """Apply every period end that has passed (of one customer, or all): a pending cancellation expires,
    a scheduled plan starts, an active plan rolls on to its next period. Each change is audited as a
    system action. Returns how many products changed."""
    now = now or timezone.now()
    due = _due(now)
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
        _due(now)
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
            successor = next(iter(_scheduled(cp.customer, cp.product, lock=True)), None)
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
        _due(now)
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
    end = _period_end(cp.product, start)
    while end is not None and end <= now:
        start, end = end, _period_end(cp.product, end)
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
    end = _period_end(cp.product, start)
    while end is not None and end <= now:
        start, end = end, _period_end(cp.product, end)
    subscription = after.stripe_subscription_id if after is not None else ""
    if after is not None and subscription:
        CustomerProduct.objects.filter(pk=after.pk).update(stripe_subscription_id="")
        after.stripe_subscription_id = ""
    cp.status = CustomerProductStatus.ACTIVE
    cp.current_period_start = start if end else None
    cp.current_period_end = end
    cp.stripe_subscription_id = subscription
    cp.save(update_fields=["status", "current_period_start", "current_period_end", "stripe_subscription_id"])
    _create_balances(cp, carried={}, kept_resets={}, now=now)
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
