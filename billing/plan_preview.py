"""What a plan change would do, read without changing anything: attaching a plan (the plan it replaces, balances
before → after, what is due today and next, how it may be paid) and cancelling or uncancelling one, with the
checks that refuse what `billing/services/plans.py` would refuse. The services roll due periods first, then
ask these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

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
from billing.stripe_io.config import is_configured
from customers.errors import Conflict, ServiceError
from customers.models import Customer

NOW, END_OF_CYCLE = "now", "end_of_cycle"
CHECKOUT, UPDATE_SUBSCRIPTION, GRANT_FREE, NO_CHARGE = "checkout", "update_subscription", "grant_free", "no_charge"
CANCEL_IMMEDIATELY, CANCEL_END_OF_CYCLE, UNCANCEL = "cancel_immediately", "cancel_end_of_cycle", "uncancel"


def recurring_amount(product: Product) -> int:
    price = product.recurring_price
    return price.amount if price is not None else 0


def currency_of(product: Product) -> str:
    return next((p.currency for p in product.prices.all()), "usd")


def is_upgrade(old: Product, new: Product) -> bool:
    """Autumn's rule: an upgrade when the new plan's recurring price is higher, or the old one is free."""
    return old.is_free or recurring_amount(new) > recurring_amount(old)


def period_end_of(product: Product, start: datetime) -> datetime | None:
    recurring = product.recurring_price
    if recurring is None:
        return None
    return add_intervals(start, recurring.interval, recurring.interval_count)


def same_plan_group(old: Product, new: Product) -> bool:
    """Does `new` replace `old`? Plans of one group do; add-ons replace nothing and are never replaced."""
    return not new.is_add_on and not old.is_add_on and old.group == new.group


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


def live_plans(customer: Customer, *, lock: bool = False) -> list[CustomerProduct]:
    qs = CustomerProduct.objects.filter(customer=customer, status__in=LIVE_PRODUCT_STATUSES).order_by("id")
    if lock:
        qs = qs.select_for_update()
    return list(qs.select_related("product").prefetch_related("product__prices", "product__items__feature"))


def scheduled_of_group(customer: Customer, product: Product, *, lock: bool = False) -> list[CustomerProduct]:
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


def balance_changes(outgoing: list[CustomerProduct], incoming: list[Product], *, carry: bool) -> list[BalanceChange]:
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


def preview_attach(*, customer: Customer, product: Product, when: str | None = None, now: datetime | None = None):
    """What attaching `product` would do now: the plan it replaces, balances before → after (with the usage
    that carries over), the amount due today, the next invoice, and how it may be paid.

    `when` is "now" or "end_of_cycle" (a downgrade's default). Raises ServiceError/Conflict for what
    `plan_attach` would refuse, so a preview never promises a change that cannot be made. Due periods are the
    caller's to roll first (`billing.services.plans.plan_preview` does)."""
    now = now or timezone.now()
    check_attachable(customer, product)
    live = live_plans(customer)
    if any(cp.product_id == product.pk for cp in live):
        raise Conflict(f"{customer.customer_id} already has {product.name}.", code="product_already_attached")
    replaced = [cp for cp in live if same_plan_group(cp.product, product)]
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
    preview.balances = balance_changes(replaced, [product], carry=when == NOW)
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
        preview.next_invoice_at = period_end_of(product, now)
        preview.next_invoice_amount = price if preview.next_invoice_at else 0
    else:
        preview.next_invoice_at = period_end_of(product, now)
    return preview


def trial_available(customer: Customer, product: Product) -> bool:
    """Whether attaching `product` starts its free trial: it has one, and the customer never had a trial of
    that plan (of any version, or a custom copy of it)."""
    if not product.has_trial:
        return False
    return not CustomerProduct.objects.filter(
        customer=customer, product__product_id=product.product_id, trial_ends_at__isnull=False
    ).exists()


def check_attachable(customer: Customer, product: Product) -> None:
    if product.archived and not product.custom_for_id:
        raise ServiceError(f"{product.name} is archived.", code="product_not_found", status=404)
    if product.custom_for_id and product.custom_for_id != customer.pk:
        raise ServiceError("That custom product belongs to another customer.", code="product_not_found", status=404)


def default_plan(customer: Customer, product: Product) -> Product | None:
    """The plan that comes back when the customer's last plan of `product`'s group ends."""
    if product.is_add_on:
        return None
    defaults = Product.objects.defaults().filter(is_add_on=False, group=product.group).exclude(pk=product.pk)
    return defaults.prefetch_related("prices", "items__feature").first()


def preview_cancel(
    *, customer: Customer, customer_product: CustomerProduct, action: str, now: datetime | None = None
) -> PlanPreview:
    """What cancelling (now or at the end of the cycle) or uncancelling `customer_product` would do. Raises what
    `plan_cancel` / `plan_uncancel` would refuse. Due periods are the caller's to roll first."""
    now = now or timezone.now()
    cp = CustomerProduct.objects.select_related("product").filter(pk=customer_product.pk, customer=customer).first()
    if cp is None or cp.status == CustomerProductStatus.EXPIRED:
        name = customer_product.product.name
        raise Conflict(f"{name} is no longer active for {customer.customer_id}.", code="product_not_active")
    product = cp.product
    preview = PlanPreview(customer=customer, product=product, action=action, when=NOW, effective_at=now)
    preview.currency, preview.methods = currency_of(product), [NO_CHARGE]
    if action == UNCANCEL:
        check_uncancellable(cp)
        preview.balances = balance_changes([cp], [product], carry=True)
        preview.next_invoice_at, preview.next_invoice_amount = cp.current_period_end, recurring_amount(product)
        preview.incoming = [product]
        return preview
    if action not in (CANCEL_IMMEDIATELY, CANCEL_END_OF_CYCLE):
        raise ServiceError(f"Unknown cancel action {action!r}.", code="invalid_input", field="cancel_action")
    if action == CANCEL_END_OF_CYCLE:
        check_cancellable_at_period_end(cp, pending_downgrade=bool(scheduled_of_group(customer, product)))
        preview.when, preview.effective_at = END_OF_CYCLE, cp.current_period_end
    preview.outgoing = [cp]
    default = default_plan(customer, product)
    others = [o for o in live_plans(customer) if o.pk != cp.pk and same_plan_group(o.product, product)]
    preview.incoming = [default] if default is not None and not others else []
    preview.balances = balance_changes([cp], preview.incoming, carry=False)
    return preview


def check_cancellable_at_period_end(cp: CustomerProduct, *, pending_downgrade: bool) -> None:
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


def check_uncancellable(cp: CustomerProduct) -> None:
    if cp.status not in LIVE_PRODUCT_STATUSES or cp.canceled_at is None:
        raise Conflict(f"{cp.product.name} has no pending cancellation to undo.", code="nothing_to_uncancel")
