"""The bulk actions: each one small object (its inputs, its skip rules, its preview line, its apply), registered
once in `REGISTRY`. The preview, the job and the dashboard's form ask the registry; nothing else names an action.

A new action is a subclass of `BulkAction` decorated with `@register` (docs/architecture.md, "A new bulk action").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerReward,
    Feature,
    FeatureType,
    Interval,
    Product,
    Reward,
)
from billing.quantities import parse_quantity
from billing.selectors import PREFER_PLAN, balance_to_edit
from billing.services.balances import balance_add, balance_create, balance_set
from billing.services.plans import CHECKOUT, GRANT_FREE, NOW, UPDATE_SUBSCRIPTION, plan_attach, plan_preview
from billing.services.rewards import reward_apply
from customers.audit import Actor
from customers.errors import ServiceError
from customers.models import Customer

SKIP_DELETED = "deleted since"
SKIP_OTHER_ENV = "other environment"
SKIP_NO_FEATURE = "feature not on their plan"
SKIP_UNLIMITED = "unlimited balance"
SKIP_HAS_COUPON = "already has the coupon"
SKIP_HAS_PRODUCT = "already has the product"
SKIP_NEEDS_PAYMENT = "needs a Stripe Checkout payment"

# Every input an action may ask for, in the order the form shows them.
INPUTS = ("feature", "amount", "interval", "expires_at", "reward", "product", "grant_free")


@dataclass
class BulkInput:
    """A bulk action's validated inputs: the stored form (`params`, JSON) and the objects it names."""

    action: str
    params: dict
    feature: Feature | None = None
    amount: Decimal | None = None
    reward: Reward | None = None
    product: Product | None = None
    expires_at: datetime | None = None
    interval: str = Interval.LIFETIME
    grant_free: bool = False


@dataclass
class Assessment:
    """What an action would do to one customer: a skip reason, or its before → after in words."""

    skip: str = ""
    before: str = ""
    after: str = ""
    balance: Balance | None = None


class Skip(Exception):
    """Raised inside a customer's change when it turns out not to apply to them."""


def fmt(value: Decimal) -> str:
    """A quantity in words: thousands separated, no trailing zeros."""
    text = f"{value:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class BulkAction:
    """One bulk action. `key` is stored on the job; `fields` are the inputs its form shows (of `INPUTS`)."""

    key: str = ""
    label: str = ""
    fields: tuple[str, ...] = ()
    help: str = ""

    def parse(self, raw: dict) -> BulkInput:
        """Validate the inputs (from the form, or a job's stored params); ServiceError names the field."""
        raise NotImplementedError

    def describe(self, got: BulkInput) -> str:
        """The action in words, for the preview's heading and the job: "Add to balance: 1,000 API calls"."""
        raise NotImplementedError

    def skip_conditions(self, got: BulkInput) -> list[tuple[str, Q]]:
        """The skip reasons the database can count for a whole selection, each with its condition on a customer
        (beyond the other environment's and the deleted ones, which every action skips)."""
        return []

    def assess(self, customer: Customer, got: BulkInput) -> Assessment:
        """What the action would do to one customer: the preview's line, and the job's check before applying."""
        raise NotImplementedError

    def apply(self, customer: Customer, got: BulkInput, seen: Assessment, *, actor: Actor, reason: str) -> str:
        """Make the change through the single edit's service; returns the customer's state after, in words."""
        raise NotImplementedError


REGISTRY: dict[str, BulkAction] = {}


def register(cls: type[BulkAction]) -> type[BulkAction]:
    """Register an action class once, under its `key`."""
    if cls.key in REGISTRY:
        raise ValueError(f"The bulk action {cls.key!r} is registered twice.")
    REGISTRY[cls.key] = cls()
    return cls


def action_for(key: str) -> BulkAction:
    action = REGISTRY.get(key)
    if action is None:
        raise ServiceError("Choose an action.", code="invalid_input", field="action")
    return action


def labels() -> dict[str, str]:
    """{key: label} of every registered action, in registration order."""
    return {key: action.label for key, action in REGISTRY.items()}


# --- the balance actions --------------------------------------------------------------------------------


def _metered_feature(raw: dict) -> Feature:
    feature = Feature.objects.filter(feature_id=str(raw.get("feature") or "")).first()
    if feature is None or feature.type == FeatureType.BOOLEAN:
        raise ServiceError("Choose a metered feature.", code="invalid_input", field="feature")
    if feature.archived:
        raise ServiceError(f"{feature.name} is archived.", code="invalid_input", field="feature")
    return feature


# The skip reason of each refusal of billing.selectors.balance_to_edit (the one rule of which balance an edit changes).
_SKIPS = {"balance_not_found": SKIP_NO_FEATURE, "balance_unlimited": SKIP_UNLIMITED}


class _BalanceEdit(BulkAction):
    """Add to or set a customer's existing balance of a feature (the plan's, else a grant)."""

    fields = ("feature", "amount")

    def parse(self, raw: dict) -> BulkInput:
        feature = _metered_feature(raw)
        amount = parse_quantity(raw.get("amount"), field="amount", allow_negative=True)
        params = {"feature": feature.feature_id, "amount": str(amount)}
        return BulkInput(action=self.key, params=params, feature=feature, amount=amount)

    def describe(self, got: BulkInput) -> str:
        return f"{self.label}: {fmt(got.amount)} {got.feature.name}"

    def skip_conditions(self, got: BulkInput) -> list[tuple[str, Q]]:
        balances = Balance.objects.filter(customer=OuterRef("pk"), feature=got.feature)
        return [
            (SKIP_NO_FEATURE, ~Exists(balances)),
            (SKIP_UNLIMITED, ~Exists(balances.filter(unlimited=False))),
        ]

    def new_remaining(self, balance: Balance, got: BulkInput) -> Decimal:
        raise NotImplementedError

    def assess(self, customer: Customer, got: BulkInput) -> Assessment:
        try:  # the plan's balance (the oldest plan's), else a grant; never an unlimited one
            balance = balance_to_edit(customer, got.feature, prefer=PREFER_PLAN, limited=True)
        except ServiceError as refused:
            return Assessment(skip=_SKIPS[refused.code])
        return Assessment(before=fmt(balance.remaining), after=fmt(self.new_remaining(balance, got)), balance=balance)


@register
class AddBalance(_BalanceEdit):
    key, label = "add_balance", "Add to balance"
    help = "Adds the amount to each customer's balance of the feature (a negative amount takes it away)."

    def new_remaining(self, balance: Balance, got: BulkInput) -> Decimal:
        return balance.remaining + got.amount

    def apply(self, customer, got, seen, *, actor, reason):
        return fmt(balance_add(balance=seen.balance, delta=got.amount, actor=actor, reason=reason).remaining)


@register
class SetBalance(_BalanceEdit):
    key, label = "set_balance", "Set balance"
    help = "Sets each customer's balance of the feature to the amount, until its next reset."

    def new_remaining(self, balance: Balance, got: BulkInput) -> Decimal:
        return got.amount

    def apply(self, customer, got, seen, *, actor, reason):
        return fmt(balance_set(balance=seen.balance, new_balance=got.amount, actor=actor, reason=reason).remaining)


@register
class CreateBalance(BulkAction):
    key, label = "create_balance", "Create Balance"
    fields = ("feature", "amount", "interval", "expires_at")
    help = "Gives each customer a new grant of the feature, beside their plan's balance."

    def parse(self, raw: dict) -> BulkInput:
        feature = _metered_feature(raw)
        amount = parse_quantity(raw.get("amount"), field="amount", allow_negative=False)
        interval = str(raw.get("interval") or Interval.LIFETIME)
        if interval not in Interval.values:
            raise ServiceError("Choose how often it resets.", code="invalid_input", field="interval")
        expires_at = None
        expires = raw.get("expires_at") or ""
        if expires:
            try:
                expires_at = datetime.fromisoformat(str(expires))
            except ValueError:
                raise ServiceError("The expiry must be a date and time.", code="invalid_input", field="expires_at")
            if timezone.is_naive(expires_at):
                expires_at = timezone.make_aware(expires_at)
            if expires_at <= timezone.now():
                raise ServiceError("The expiry must be in the future.", code="invalid_input", field="expires_at")
        params = {
            "feature": feature.feature_id,
            "amount": str(amount),
            "interval": interval,
            "expires_at": expires_at.isoformat() if expires_at else "",
        }
        return BulkInput(
            action=self.key,
            params=params,
            feature=feature,
            amount=amount,
            interval=interval,
            expires_at=expires_at,
        )

    def describe(self, got: BulkInput) -> str:
        text = f"{self.label}: {fmt(got.amount)} {got.feature.name}"
        return text + (f", until {got.expires_at:%d %b %Y}" if got.expires_at else "")

    def assess(self, customer: Customer, got: BulkInput) -> Assessment:
        total = sum((b.remaining for b in Balance.objects.filter(customer=customer, feature=got.feature)), Decimal(0))
        return Assessment(before=fmt(total), after=fmt(total + got.amount))

    def apply(self, customer, got, seen, *, actor, reason):
        balance_create(
            customer=customer,
            feature=got.feature,
            actor=actor,
            reason=reason,
            granted=got.amount,
            interval=got.interval,
            expires_at=got.expires_at,
        )
        return seen.after


# --- coupons and products -------------------------------------------------------------------------------


@register
class AddCoupon(BulkAction):
    key, label = "add_coupon", "Add Coupon"
    fields = ("reward",)
    help = "Applies the coupon to each customer's next invoices."

    def parse(self, raw: dict) -> BulkInput:
        reward = Reward.objects.filter(reward_id=str(raw.get("reward") or ""), active=True).first()
        if reward is None:
            raise ServiceError("Choose an active coupon.", code="invalid_input", field="reward")
        return BulkInput(action=self.key, params={"reward": reward.reward_id}, reward=reward)

    def describe(self, got: BulkInput) -> str:
        return f"{self.label}: {got.reward.name}"

    def skip_conditions(self, got: BulkInput) -> list[tuple[str, Q]]:
        held = CustomerReward.objects.filter(customer=OuterRef("pk"), reward=got.reward, removed_at__isnull=True)
        return [(SKIP_HAS_COUPON, Exists(held))]

    def assess(self, customer: Customer, got: BulkInput) -> Assessment:
        if CustomerReward.objects.filter(customer=customer, reward=got.reward, removed_at__isnull=True).exists():
            return Assessment(skip=SKIP_HAS_COUPON)
        count = CustomerReward.objects.filter(customer=customer, removed_at__isnull=True).count()
        return Assessment(before=f"{count} coupon{'s' if count != 1 else ''}", after=f"+ {got.reward.name}")

    def apply(self, customer, got, seen, *, actor, reason):
        reward_apply(customer=customer, reward=got.reward, actor=actor)
        return seen.after


@register
class AttachProduct(BulkAction):
    key, label = "attach_product", "Attach Product"
    fields = ("product", "grant_free")
    help = (
        "Attaches the product now, by the plan rules. A paid plan needs a Stripe subscription to update, "
        "or Grant for free."
    )

    def parse(self, raw: dict) -> BulkInput:
        product = (
            Product.objects.filter(product_id=str(raw.get("product") or ""), custom_for__isnull=True, archived=False)
            .order_by("-version")
            .first()
        )
        if product is None:
            raise ServiceError("Choose a product.", code="invalid_input", field="product")
        grant_free = raw.get("grant_free") in (True, "1", "on", "true")
        params = {"product": product.product_id, "grant_free": grant_free}
        return BulkInput(action=self.key, params=params, product=product, grant_free=grant_free)

    def describe(self, got: BulkInput) -> str:
        return f"{self.label}: {got.product.name}" + (" (granted for free)" if got.grant_free else "")

    def skip_conditions(self, got: BulkInput) -> list[tuple[str, Q]]:
        held = CustomerProduct.objects.filter(
            customer=OuterRef("pk"), product__product_id=got.product.product_id, status__in=LIVE_PRODUCT_STATUSES
        )
        return [(SKIP_HAS_PRODUCT, Exists(held))]

    def assess(self, customer: Customer, got: BulkInput) -> Assessment:
        live = list(
            CustomerProduct.objects.filter(customer=customer, status__in=LIVE_PRODUCT_STATUSES).select_related(
                "product"
            )
        )
        if any(cp.product.product_id == got.product.product_id for cp in live):
            return Assessment(skip=SKIP_HAS_PRODUCT)
        return Assessment(before=", ".join(cp.product.name for cp in live) or "no product", after=got.product.name)

    def apply(self, customer, got, seen, *, actor, reason):
        preview = plan_preview(customer=customer, product=got.product, when=NOW)
        if not preview.needs_payment:
            method = preview.default_method
        elif got.grant_free:
            method = GRANT_FREE
        elif UPDATE_SUBSCRIPTION in preview.methods:
            method = UPDATE_SUBSCRIPTION
        else:
            raise Skip(SKIP_NEEDS_PAYMENT if CHECKOUT in preview.methods else "needs payment: Stripe not connected")
        plan_attach(customer=customer, product=got.product, actor=actor, reason=reason, when=NOW, method=method)
        return seen.after


def bulk_input(action: str, raw: dict) -> BulkInput:
    """Validate an action's inputs (from the form, or a job's stored params); ServiceError names the field."""
    return action_for(action).parse(raw)


def describe(got: BulkInput) -> str:
    return action_for(got.action).describe(got)
