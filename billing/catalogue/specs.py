"""The catalogue as data: the desired state of a feature or a plan (the specs), what a request would change, the
specs read back from the stored catalogue, and the money and text limits a spec is held to."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from billing.models import (
    Feature,
    FeatureType,
    Interval,
    Price,
    PriceInterval,
    Product,
    TrialUnit,
    UsageType,
)
from billing.money import decimals_of
from billing.quantities import ZERO, parse_quantity
from customers.errors import ServiceError

NAME_MAX = 255
GROUP_MAX = 100
DESCRIPTION_MAX = 2000
EVENT_NAMES_MAX = 100
RESET_INTERVALS = tuple(i for i in Interval.values if i != Interval.LIFETIME)
PRICE_INTERVALS = tuple(PriceInterval.values)
TRIAL_MAX = {"day": 730, "month": 24, "year": 2}  # Stripe's longest trial: two years


# --- the desired state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditCostSpec:
    metered_feature_id: str
    credit_cost: Decimal


@dataclass(frozen=True)
class FeatureSpec:
    feature_id: str
    name: str
    type: str  # boolean | metered | credit_system
    consumable: bool = True  # metered: used up and reset (single use), or allocated (seats)
    event_names: tuple[str, ...] = ()
    credit_schema: tuple[CreditCostSpec, ...] = ()
    unit_label: str | None = None  # None: as it is (a new feature: none)
    archived: bool | None = None  # None: as it is (a new feature: not archived)

    @property
    def usage_type(self) -> str:
        if self.type == FeatureType.BOOLEAN:
            return ""
        if self.type == FeatureType.CREDIT_SYSTEM:
            return UsageType.SINGLE_USE
        return UsageType.SINGLE_USE if self.consumable else UsageType.CONTINUOUS_USE


@dataclass(frozen=True)
class PriceSpec:
    """A plan's fixed price: minor units per interval."""

    amount: int
    interval: str
    interval_count: int = 1
    currency: str = "usd"


@dataclass(frozen=True)
class UsagePriceSpec:
    """What usage beyond an item's allowance costs: `amount` minor units per `billing_units`."""

    amount: int
    billing_units: Decimal
    interval: str
    interval_count: int = 1
    currency: str = "usd"


@dataclass(frozen=True)
class ItemSpec:
    feature_id: str
    included: Decimal = ZERO
    unlimited: bool = False
    interval: str = Interval.LIFETIME
    interval_count: int = 1
    usage_price: UsagePriceSpec | None = None
    usage_limit: Decimal | None = None  # total usage allowed, overage included

    @property
    def overage_allowed(self) -> bool:
        return self.usage_price is not None


@dataclass(frozen=True)
class TrialSpec:
    """A plan's free trial: `length` days, months or years before the first charge."""

    length: int
    unit: str = TrialUnit.MONTH
    card_required: bool = False


@dataclass(frozen=True)
class PlanSpec:
    plan_id: str
    name: str
    description: str | None = None  # None: as it is (a new plan: none)
    group: str = ""
    add_on: bool = False
    auto_enable: bool = False
    archived: bool | None = None  # None: as it is (a new plan: not archived)
    price: PriceSpec | None = None
    items: tuple[ItemSpec, ...] = ()
    free_trial: TrialSpec | None = None
    force_version: bool = False  # a new version even without customers
    disable_version: bool = False  # change the current version in place

    def what_customers_get(self) -> tuple:
        return (self.price, tuple(sorted(self.items, key=lambda i: i.feature_id)), self.free_trial)

    def in_place(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "group": self.group,
            "add_on": self.add_on,
            "auto_enable": self.auto_enable,
            "archived": self.archived,
        }


# --- what a request would change ---------------------------------------------------------------------


@dataclass
class FeatureChange:
    feature_id: str
    action: str  # create | update | remove | none
    spec: FeatureSpec | None
    current: Feature | None
    previous: dict | None = None  # the fields that change, with their values now
    will_archive: bool = False


@dataclass
class PlanChange:
    plan_id: str
    action: str  # created | updated | deleted | none
    spec: PlanSpec | None
    current: Product | None
    versionable: bool = False
    will_archive: bool = False
    customer_count: int = 0  # in the asking environment
    previous: dict | None = None
    item_changes: list[dict] = field(default_factory=list)
    price_changed: bool = False
    result: Product | None = None  # after catalogue_apply: the version written


@dataclass
class CatalogueChanges:
    features: list[FeatureChange]
    plans: list[PlanChange]

    @property
    def changed(self) -> bool:
        return any(c.action != "none" for c in self.features) or any(c.action != "none" for c in self.plans)


def refuse(where: str, message: str, *, code: str = "invalid_inputs", status: int = 422) -> ServiceError:
    return ServiceError(f"{where}: {message}", code=code, field=where, status=status)


# --- reading the catalogue as specs ---------------------------------------------------------------------


def feature_spec_of(feature: Feature) -> FeatureSpec:
    """A stored feature as the desired state that would leave it unchanged (credit_schema prefetched)."""
    return FeatureSpec(
        feature_id=feature.feature_id,
        name=feature.name,
        type=feature.type,
        consumable=feature.type == FeatureType.CREDIT_SYSTEM
        or (feature.type == FeatureType.METERED and feature.usage_type != UsageType.CONTINUOUS_USE),
        event_names=tuple(feature.event_names or ()),
        credit_schema=tuple(
            CreditCostSpec(c.metered_feature.feature_id, c.credit_cost)
            for c in sorted(feature.credit_schema.all(), key=lambda c: c.metered_feature.feature_id)
        ),
        unit_label=feature.unit_label,
        archived=feature.archived,
    )


def plan_spec_of(product: Product) -> PlanSpec:
    """A stored plan version as the desired state that would leave it unchanged (items, their features and
    prices prefetched)."""
    prices = list(product.prices.all())
    fixed = [p for p in prices if p.type == Price.Type.FIXED]
    plan_price = product.recurring_price or (fixed[0] if fixed else None)
    items = []
    for item in product.items.all():
        usage = product.item_usage_price(item)
        items.append(
            ItemSpec(
                feature_id=item.feature.feature_id,
                included=ZERO if item.unlimited else item.included,
                unlimited=item.unlimited,
                interval=item.interval,
                interval_count=item.interval_count,
                usage_price=UsagePriceSpec(
                    usage.amount, usage.billing_units, usage.interval, usage.interval_count, usage.currency
                )
                if usage
                else None,
                usage_limit=item.usage_limit if item.overage_allowed else None,
            )
        )
    return PlanSpec(
        plan_id=product.product_id,
        name=product.name,
        description=product.description,
        group=product.group,
        add_on=product.is_add_on,
        auto_enable=product.is_default,
        archived=product.archived,
        price=PriceSpec(plan_price.amount, plan_price.interval, plan_price.interval_count, plan_price.currency)
        if plan_price
        else None,
        items=tuple(items),
        free_trial=TrialSpec(product.trial_length, product.trial_unit, product.trial_card_required)
        if product.trial_length
        else None,
    )


DEFAULT_CURRENCY = "usd"


def plan_currency(plan_id: str) -> str:
    """The currency a plan's prices are in (its newest version's), or the default for a new plan."""
    price = (
        Price.objects.filter(product__product_id=plan_id, product__custom_for__isnull=True)
        .order_by("-product__version", "id")
        .values_list("currency", flat=True)
        .first()
    )
    return price or DEFAULT_CURRENCY


def parse_amount(raw, *, where: str, currency: str) -> int:
    """Money as Autumn sends it (major units, 29.99) in minor units (2999); a fraction of a cent is refused."""

    value = parse_quantity(raw, field=where, allow_negative=False)
    minor = value * (10 ** decimals_of(currency))
    if minor != minor.to_integral_value():
        raise refuse(where, f"{currency.upper()} amounts are whole minor units (cents) here")
    return int(minor)
