"""The catalogue from code: features and plans created, changed and removed as one desired state, the way
Autumn's `catalog.update` (and its CLI, `atmn push`) sends them, and one at a time (`features.*`, `plans.*`).

Every write goes through `catalogue_apply`: it locks what it changes, checks the whole request first (a bad
field is a ServiceError naming it, and nothing is written), then applies it in one transaction, with an
audit entry per feature and plan changed. `catalogue_preview` runs the same planning without writing.

Autumn's rule for a plan customers are on: a change to what they get (its price, its items, its free trial) makes a new
version of the plan (`Product.version`); the customers keep the version they have until they are moved, and
new customers get the newest. A change of its name, description, group, add-on or default flag is made in
place. The catalogue is one for sandbox and live, so a plan is versioned when customers of either
environment hold it; the counts a preview shows are those of the asking environment only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q

from billing.models import (
    HELD_PRODUCT_STATUSES,
    SLUG_PATTERN,
    Balance,
    CreditCost,
    CustomerProduct,
    Event,
    Feature,
    FeatureType,
    Interval,
    Price,
    PriceInterval,
    Product,
    ProductItem,
    Reward,
    TrialUnit,
    UsageType,
)
from billing.money import decimals_of
from billing.quantities import MAX_ABS, ZERO, parse_quantity
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError

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


def _refuse(where: str, message: str, *, code: str = "invalid_inputs", status: int = 422) -> ServiceError:
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
        usage = next((p for p in prices if p.type == Price.Type.USAGE and p.feature_id == item.feature_id), None)
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
                if usage and item.overage_allowed
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


# The key of the transaction-scoped advisory lock that catalogue writes take (any fixed number; "catalog").
CATALOGUE_LOCK_KEY = 0x636174616C6F67


def _lock_catalogue() -> None:
    """One catalogue write at a time, until the caller's transaction ends.

    Row locks cannot serialise a write of a row that does not exist yet: two `features.create` of one id, or two
    `plans.update` of a held plan (each making version n + 1), both read "not there", both insert, and one hits
    the unique constraint (a 500). Catalogue writes are rare, so they queue on one lock instead, and each reads
    what it changes only once it holds it: the second create then finds the feature and answers 409, the second
    update changes the version the first one made. (SQLite runs one write transaction at a time anyway.)"""
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise RuntimeError("The catalogue lock is taken inside a transaction.")
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CATALOGUE_LOCK_KEY])


def _features_by_id(ids: Iterable[str] | None = None, *, lock: bool = False) -> dict[str, Feature]:
    rows = Feature.objects.prefetch_related("credit_schema__metered_feature")
    if ids is not None:
        rows = rows.filter(feature_id__in=list(ids))
    if lock:
        rows = rows.select_for_update(of=("self",))
    return {f.feature_id: f for f in rows.order_by("feature_id")}


def _newest_plans(ids: Iterable[str] | None = None, *, lock: bool = False) -> dict[str, Product]:
    """The newest version of each catalogue plan (never a customer's custom copy)."""
    rows = Product.objects.filter(custom_for__isnull=True)
    if ids is not None:
        rows = rows.filter(product_id__in=list(ids))
    if lock:
        rows = rows.select_for_update()
    rows = rows.prefetch_related("items__feature", "prices").order_by("product_id", "-version")
    newest: dict[str, Product] = {}
    for p in rows:
        newest.setdefault(p.product_id, p)
    return newest


def _holders(product_ids: Iterable[str]) -> dict[tuple[str, str], int]:
    """(product_id, env) → how many customers hold any version of it (live or scheduled)."""
    rows = (
        CustomerProduct.objects.filter(
            product__product_id__in=list(product_ids),
            product__custom_for__isnull=True,
            status__in=HELD_PRODUCT_STATUSES,
            customer__deleted_at__isnull=True,
        )
        .values("product__product_id", "product__version", "customer__env")
        .annotate(n=Count("customer", distinct=True))
    )
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["product__product_id"], row["customer__env"])
        counts[key] = counts.get(key, 0) + row["n"]
    return counts


def _holders_of_version(product: Product) -> bool:
    return CustomerProduct.objects.filter(
        product=product, status__in=HELD_PRODUCT_STATUSES, customer__deleted_at__isnull=True
    ).exists()


def _ever_used(product_ids: Iterable[str]) -> set[str]:
    """Plans some customer has ever been on (any status): they can be archived, not deleted."""
    return set(
        CustomerProduct.objects.filter(
            product__product_id__in=list(product_ids), product__custom_for__isnull=True
        ).values_list("product__product_id", flat=True)
    )


def _features_in_use(features: Iterable[Feature]) -> set[int]:
    """Features that a plan, a balance, an event, a reward or a credit system refers to: archived, not deleted."""
    pks = [f.pk for f in features]
    used = set(ProductItem.objects.filter(feature_id__in=pks).values_list("feature_id", flat=True))
    used |= set(Balance.all_objects.filter(feature_id__in=pks).values_list("feature_id", flat=True))
    used |= set(Price.objects.filter(feature_id__in=pks).values_list("feature_id", flat=True))
    used |= set(CreditCost.objects.filter(metered_feature_id__in=pks).values_list("metered_feature_id", flat=True))
    used |= set(Reward.objects.filter(grant_feature_id__in=pks).values_list("grant_feature_id", flat=True))
    for pk in pks:
        if pk not in used and Event.objects.filter(feature_id=pk).exists():
            used.add(pk)
    return used


# --- checking a desired state --------------------------------------------------------------------------


def _check_id(where: str, value: str) -> None:
    if not value or len(value) > 255 or not re.match(SLUG_PATTERN, value):
        raise _refuse(where, "must be 1 to 255 letters, digits, '_' or '-'")


def _check_text(where: str, value: str, limit: int, *, required: bool = False) -> None:
    if required and not value.strip():
        raise _refuse(where, "is required")
    if len(value) > limit:
        raise _refuse(where, f"must be at most {limit:,} characters")


def _check_feature(where: str, spec: FeatureSpec, known_types: dict[str, str]) -> None:
    _check_id(f"{where}.feature_id", spec.feature_id)
    _check_text(f"{where}.name", spec.name, NAME_MAX, required=True)
    if spec.type not in FeatureType.values:
        raise _refuse(f"{where}.type", "must be boolean, metered or credit_system")
    if len(spec.event_names) > EVENT_NAMES_MAX or any(not n or len(n) > 255 for n in spec.event_names):
        raise _refuse(f"{where}.event_names", f"at most {EVENT_NAMES_MAX} names of 1 to 255 characters")
    if spec.type == FeatureType.CREDIT_SYSTEM:
        if not spec.credit_schema:
            raise _refuse(f"{where}.credit_schema", "a credit system needs at least one metered feature and its cost")
        seen = set()
        for n, cost in enumerate(spec.credit_schema):
            at = f"{where}.credit_schema[{n}]"
            if cost.metered_feature_id in seen:
                raise _refuse(f"{at}.metered_feature_id", f"{cost.metered_feature_id} is listed twice")
            seen.add(cost.metered_feature_id)
            kind = known_types.get(cost.metered_feature_id)
            if kind is None:
                raise _refuse(f"{at}.metered_feature_id", f"there is no feature {cost.metered_feature_id}")
            if kind != FeatureType.METERED:
                raise _refuse(f"{at}.metered_feature_id", f"{cost.metered_feature_id} is not a metered feature")
            if cost.credit_cost <= 0:
                raise _refuse(f"{at}.credit_cost", "must be more than 0")
    elif spec.credit_schema:
        raise _refuse(f"{where}.credit_schema", "only a credit_system feature has a credit schema")


def _check_plan(where: str, spec: PlanSpec, known_types: dict[str, str]) -> None:
    _check_id(f"{where}.plan_id", spec.plan_id)
    _check_text(f"{where}.name", spec.name, NAME_MAX, required=True)
    _check_text(f"{where}.description", spec.description, DESCRIPTION_MAX)
    _check_text(f"{where}.group", spec.group, GROUP_MAX)
    if spec.price is not None:
        if spec.price.interval not in PRICE_INTERVALS:
            raise _refuse(f"{where}.price.interval", f"must be one of {', '.join(PRICE_INTERVALS)}")
        if not 1 <= spec.price.interval_count <= 1000:
            raise _refuse(f"{where}.price.interval_count", "must be between 1 and 1,000")
    if spec.free_trial is not None:
        trial = spec.free_trial
        if trial.unit not in TrialUnit.values:
            raise _refuse(f"{where}.free_trial.duration_type", f"must be one of {', '.join(TrialUnit.values)}")
        if not 1 <= trial.length <= TRIAL_MAX[trial.unit]:
            raise _refuse(
                f"{where}.free_trial.duration_length", f"must be between 1 and {TRIAL_MAX[trial.unit]} {trial.unit}s"
            )
    seen = set()
    for n, item in enumerate(spec.items):
        at = f"{where}.items[{n}]"
        if item.feature_id in seen:
            raise _refuse(f"{at}.feature_id", f"{item.feature_id} is in the plan twice")
        seen.add(item.feature_id)
        kind = known_types.get(item.feature_id)
        if kind is None:
            raise _refuse(f"{at}.feature_id", f"there is no feature {item.feature_id}")
        if kind == FeatureType.BOOLEAN and (item.interval != Interval.LIFETIME or item.usage_price or item.included):
            raise _refuse(at, f"{item.feature_id} is a boolean feature: it has no allowance, reset or price")
        if item.interval not in Interval.values:
            raise _refuse(f"{at}.reset.interval", f"must be one of {', '.join(RESET_INTERVALS)}")
        if not 1 <= item.interval_count <= 1000:
            raise _refuse(f"{at}.reset.interval_count", "must be between 1 and 1,000")
        if item.included < 0 or item.included > MAX_ABS:
            raise _refuse(f"{at}.included", "must be between 0 and 1,000,000,000,000,000")
        if item.usage_price is not None:
            if item.unlimited:
                raise _refuse(f"{at}.price", "an unlimited item has no usage price")
            if item.usage_price.interval not in PRICE_INTERVALS:
                raise _refuse(f"{at}.price.interval", f"must be one of {', '.join(PRICE_INTERVALS)}")
            if not 1 <= item.usage_price.interval_count <= 1000:
                raise _refuse(f"{at}.price.interval_count", "must be between 1 and 1,000")
            if item.usage_price.billing_units <= 0:
                raise _refuse(f"{at}.price.billing_units", "must be more than 0")
        if item.usage_limit is not None and item.usage_limit < item.included:
            raise _refuse(f"{at}.price.max_purchase", "must not be negative")


def _settled_feature(spec: FeatureSpec, current: Feature | None) -> FeatureSpec:
    """The spec with what it leaves as it is filled in from the stored feature."""
    return replace(
        spec,
        unit_label=spec.unit_label if spec.unit_label is not None else (current.unit_label if current else ""),
        archived=spec.archived if spec.archived is not None else (current.archived if current else False),
    )


def _settled_plan(spec: PlanSpec, current: Product | None) -> PlanSpec:
    return replace(
        spec,
        description=spec.description if spec.description is not None else (current.description if current else ""),
        archived=spec.archived if spec.archived is not None else (current.archived if current else False),
    )


# --- planning a change --------------------------------------------------------------------------------


def _feature_previous(current: FeatureSpec, wanted: FeatureSpec) -> dict:
    now, then = asdict(current), asdict(wanted)
    return {k: now[k] for k in now if now[k] != then[k]}


def _plan_previous(current: PlanSpec, wanted: PlanSpec) -> dict:
    now, then = current.in_place(), wanted.in_place()
    previous = {k: now[k] for k in now if now[k] != then[k]}
    if current.free_trial != wanted.free_trial:
        previous["free_trial"] = asdict(current.free_trial) if current.free_trial else None
    return previous


def _item_changes(current: PlanSpec, wanted: PlanSpec) -> list[dict]:
    before = {i.feature_id: i for i in current.items}
    after = {i.feature_id: i for i in wanted.items}
    changes = []
    for fid in sorted(before.keys() | after.keys()):
        if fid not in after:
            changes.append({"feature_id": fid, "action": "removed"})
        elif fid not in before:
            changes.append({"feature_id": fid, "action": "added"})
        elif before[fid] != after[fid]:
            changes.append({"feature_id": fid, "action": "updated"})
    return changes


def _plan_catalogue(
    *,
    features: list[FeatureSpec],
    plans: list[PlanSpec],
    env: str,
    remove_missing: bool,
    skip_feature_ids: Iterable[str] = (),
    skip_plan_ids: Iterable[str] = (),
    lock: bool = False,
) -> CatalogueChanges:
    """What applying this desired state would do, checked in full: a ServiceError names the first bad field."""
    features, plans = list(features), list(plans)
    skip_features, skip_plans = set(skip_feature_ids), set(skip_plan_ids)
    for n, spec in enumerate(features):
        if spec.feature_id in {s.feature_id for s in features[:n]}:
            raise _refuse(f"features[{n}].feature_id", f"{spec.feature_id} is listed twice")
    for n, spec in enumerate(plans):
        if spec.plan_id in {s.plan_id for s in plans[:n]}:
            raise _refuse(f"plans[{n}].plan_id", f"{spec.plan_id} is listed twice")

    stored_features = _features_by_id(None if remove_missing else [f.feature_id for f in features], lock=lock)
    stored_plans = _newest_plans(None if remove_missing else [p.plan_id for p in plans], lock=lock)
    # Plan items may name features of this request, or features already stored.
    known_types = {fid: f.type for fid, f in _features_by_id().items()} if not remove_missing else {}
    known_types.update({fid: f.type for fid, f in stored_features.items()})
    known_types.update({f.feature_id: f.type for f in features})

    feature_changes: list[FeatureChange] = []
    for n, spec in enumerate(features):
        current = stored_features.get(spec.feature_id)
        spec = features[n] = _settled_feature(spec, current)
        _check_feature(f"features[{n}]", spec, known_types)
        if spec.feature_id in skip_features:
            continue
        if current is None:
            feature_changes.append(FeatureChange(spec.feature_id, "create", spec, None))
            continue
        now = feature_spec_of(current)
        if now == spec:
            feature_changes.append(FeatureChange(spec.feature_id, "none", spec, current))
            continue
        if now.type != spec.type or now.usage_type != spec.usage_type:
            if _features_in_use([current]):
                raise _refuse(
                    f"features[{n}].type",
                    f"{spec.feature_id} is in use (by plans, balances or events): its type can't change",
                    code="feature_in_use",
                    status=409,
                )
        feature_changes.append(
            FeatureChange(spec.feature_id, "update", spec, current, previous=_feature_previous(now, spec))
        )

    plan_changes: list[PlanChange] = []
    holders = _holders([p.plan_id for p in plans]) if plans else {}
    for n, spec in enumerate(plans):
        current = stored_plans.get(spec.plan_id)
        spec = plans[n] = _settled_plan(spec, current)
        _check_plan(f"plans[{n}]", spec, known_types)
        if spec.plan_id in skip_plans:
            continue
        mine = holders.get((spec.plan_id, env), 0)
        if current is None:
            plan_changes.append(PlanChange(spec.plan_id, "created", spec, None))
            continue
        now = plan_spec_of(current)
        gets_change = now.what_customers_get() != spec.what_customers_get()
        previous = _plan_previous(now, spec)
        if not gets_change and not previous and not spec.force_version:
            plan_changes.append(PlanChange(spec.plan_id, "none", spec, current, customer_count=mine))
            continue
        held = gets_change and _holders_of_version(current)
        if held and spec.disable_version:
            raise _refuse(
                f"plans[{n}].disable_version",
                f"customers are on {spec.plan_id} v{current.version}: a change to its price, items or free "
                "trial makes a new version here, and they keep theirs until moved",
                code="plan_has_customers",
                status=409,
            )
        plan_changes.append(
            PlanChange(
                spec.plan_id,
                "updated",
                spec,
                current,
                versionable=(held or spec.force_version) and not spec.disable_version,
                customer_count=mine,
                previous=previous or None,
                item_changes=_item_changes(now, spec),
                price_changed=now.price != spec.price,
            )
        )

    if remove_missing:
        wanted_features = {f.feature_id for f in features} | skip_features
        gone = [f for fid, f in stored_features.items() if fid not in wanted_features and not f.archived]
        in_use = _features_in_use(gone)
        wanted_plans = {p.plan_id for p in plans} | skip_plans
        gone_plans = [p for pid, p in stored_plans.items() if pid not in wanted_plans and not p.archived]
        used_plans = _ever_used([p.product_id for p in gone_plans])
        for f in gone:
            # Still referred to (by a plan version, a balance, an event...): archived, so history keeps its name.
            feature_changes.append(FeatureChange(f.feature_id, "remove", None, f, will_archive=f.pk in in_use))
        removal_holders = _holders([p.product_id for p in gone_plans]) if gone_plans else {}
        for p in gone_plans:
            plan_changes.append(
                PlanChange(
                    p.product_id,
                    "deleted",
                    None,
                    p,
                    will_archive=p.product_id in used_plans,
                    customer_count=removal_holders.get((p.product_id, env), 0),
                )
            )
    # A feature must stay while a wanted plan or credit system refers to it.
    still_needed = {i.feature_id for p in plans for i in p.items} | {
        c.metered_feature_id for f in features for c in f.credit_schema
    }
    for change in feature_changes:
        if change.action == "remove" and change.feature_id in still_needed:
            raise _refuse(
                "features",
                f"{change.feature_id} is left out but a plan or credit system of the request uses it",
            )
    return CatalogueChanges(feature_changes, plan_changes)


def catalogue_preview(
    *,
    features: list[FeatureSpec],
    plans: list[PlanSpec],
    env: str,
    remove_missing: bool = False,
    skip_feature_ids: Iterable[str] = (),
    skip_plan_ids: Iterable[str] = (),
) -> CatalogueChanges:
    """What `catalogue_apply` would do with the same arguments, written nowhere."""
    return _plan_catalogue(
        features=features,
        plans=plans,
        env=env,
        remove_missing=remove_missing,
        skip_feature_ids=skip_feature_ids,
        skip_plan_ids=skip_plan_ids,
    )


# --- applying a change ----------------------------------------------------------------------------------


def _feature_after(feature: Feature) -> dict:
    return asdict(feature_spec_of(feature))


def _write_feature(feature: Feature, spec: FeatureSpec) -> None:
    feature.name = spec.name
    feature.type = spec.type
    feature.usage_type = spec.usage_type
    feature.event_names = list(spec.event_names)
    feature.unit_label = spec.unit_label
    feature.archived = spec.archived
    feature.save()


def _write_credit_schema(feature: Feature, spec: FeatureSpec, by_id: dict[str, Feature]) -> None:
    CreditCost.objects.filter(credit_system=feature).delete()
    CreditCost.objects.bulk_create(
        CreditCost(credit_system=feature, metered_feature=by_id[c.metered_feature_id], credit_cost=c.credit_cost)
        for c in spec.credit_schema
    )


def _write_plan_contents(product: Product, spec: PlanSpec, by_id: dict[str, Feature]) -> None:
    """Replace a version's price and items with the spec's."""
    product.prices.all().delete()
    product.items.all().delete()
    if spec.price is not None:
        Price.objects.create(
            product=product,
            type=Price.Type.FIXED,
            amount=spec.price.amount,
            currency=spec.price.currency,
            interval=spec.price.interval,
            interval_count=spec.price.interval_count,
        )
    for item in spec.items:
        feature = by_id[item.feature_id]
        ProductItem.objects.create(
            product=product,
            feature=feature,
            included=ZERO if item.unlimited else item.included,
            unlimited=item.unlimited,
            interval=item.interval,
            interval_count=item.interval_count,
            overage_allowed=item.overage_allowed,
            usage_limit=item.usage_limit,
        )
        if item.usage_price is not None:
            Price.objects.create(
                product=product,
                type=Price.Type.USAGE,
                feature=feature,
                amount=item.usage_price.amount,
                currency=item.usage_price.currency,
                interval=item.usage_price.interval,
                interval_count=item.usage_price.interval_count,
                billing_units=item.usage_price.billing_units,
            )


def _set_in_place(product: Product, spec: PlanSpec) -> None:
    product.name = spec.name
    product.description = spec.description
    product.group = spec.group
    product.is_add_on = spec.add_on
    product.is_default = spec.auto_enable
    product.archived = spec.archived


def _set_trial(product: Product, spec: PlanSpec) -> None:
    trial = spec.free_trial
    product.trial_length = trial.length if trial else None
    product.trial_unit = trial.unit if trial else ""
    product.trial_card_required = trial.card_required if trial else False


def _plan_after(product: Product) -> dict:
    fresh = Product.objects.prefetch_related("items__feature", "prices").get(pk=product.pk)
    return {"version": fresh.version, **asdict(plan_spec_of(fresh))}


def _audit(actor: Actor, env: str, action: AuditAction, kind: str, target: str, before, after, reason: str) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type=kind,
        target_id=target,
        before=before,
        after=after,
        reason=reason,
        env=env,
    )


@transaction.atomic
def catalogue_apply(
    *,
    features: list[FeatureSpec],
    plans: list[PlanSpec],
    actor: Actor,
    env: str,
    reason: str,
    remove_missing: bool = False,
    skip_feature_ids: Iterable[str] = (),
    skip_plan_ids: Iterable[str] = (),
) -> CatalogueChanges:
    """Make the catalogue what the request describes: every feature and plan named is created or changed
    (a plan customers hold gets a new version when what they get changes), and with `remove_missing` the
    features and plans left out are deleted, or archived when something still refers to them. Checked in
    full before anything is written; one audit entry per feature and plan changed."""
    _lock_catalogue()
    changes = _plan_catalogue(
        features=features,
        plans=plans,
        env=env,
        remove_missing=remove_missing,
        skip_feature_ids=skip_feature_ids,
        skip_plan_ids=skip_plan_ids,
        lock=True,
    )
    # Features first, credit schemas once every feature they name exists, then plans, then removals.
    for change in changes.features:
        spec = change.spec
        if change.action == "create":
            change.current = Feature.objects.create(
                feature_id=spec.feature_id,
                name=spec.name,
                type=spec.type,
                usage_type=spec.usage_type,
                event_names=list(spec.event_names),
                unit_label=spec.unit_label,
                archived=spec.archived,
            )
        elif change.action == "update":
            _write_feature(change.current, spec)
    by_id = {f.feature_id: f for f in Feature.objects.all()}
    for change in changes.features:
        if change.action in ("create", "update"):
            _write_credit_schema(by_id[change.feature_id], change.spec, by_id)
            action = AuditAction.FEATURE_CREATE if change.action == "create" else AuditAction.FEATURE_UPDATE
            after = _feature_after(
                Feature.objects.prefetch_related("credit_schema__metered_feature").get(pk=by_id[change.feature_id].pk)
            )
            _audit(actor, env, action, "feature", change.feature_id, change.previous, after, reason)

    for change in changes.plans:
        spec = change.spec
        if change.action == "created":
            product = Product.objects.create(product_id=spec.plan_id, name=spec.name, version=1)
            _set_in_place(product, spec)
            _set_trial(product, spec)
            product.save()
            _write_plan_contents(product, spec, by_id)
            change.result = product
            _audit(actor, env, AuditAction.PLAN_CREATE, "product", spec.plan_id, None, _plan_after(product), reason)
        elif change.action == "updated":
            current = change.current
            was = plan_spec_of(current)
            gets_change = was.what_customers_get() != spec.what_customers_get()
            if change.versionable:
                product = Product.objects.create(product_id=spec.plan_id, name=spec.name, version=current.version + 1)
                _set_in_place(product, spec)
                _set_trial(product, spec)
                product.save()
                _write_plan_contents(product, spec, by_id)
                action = AuditAction.PLAN_VERSION
            else:
                product = current
                _set_in_place(product, spec)
                _set_trial(product, spec)
                product.save()
                if gets_change:
                    _write_plan_contents(product, spec, by_id)
                action = AuditAction.PLAN_UPDATE
            if "archived" in (change.previous or {}):  # archiving a plan archives every version of it
                Product.objects.filter(product_id=spec.plan_id, custom_for__isnull=True).update(archived=spec.archived)
            change.result = product
            before = {"version": current.version, **(change.previous or {})}
            if gets_change:
                before["items"] = change.item_changes
            _audit(actor, env, action, "product", spec.plan_id, before, _plan_after(product), reason)

    for change in changes.plans:
        if change.action != "deleted":
            continue
        versions = Product.objects.filter(product_id=change.plan_id, custom_for__isnull=True)
        if change.will_archive:
            versions.update(archived=True)
        else:
            versions.delete()
        _audit(
            actor,
            env,
            AuditAction.PLAN_UPDATE if change.will_archive else AuditAction.PLAN_DELETE,
            "product",
            change.plan_id,
            {"archived": False},
            {"archived": True} if change.will_archive else None,
            reason,
        )
    for change in changes.features:
        if change.action != "remove":
            continue
        if change.will_archive:
            Feature.objects.filter(pk=change.current.pk).update(archived=True)
            after = {"archived": True}
        else:
            Feature.objects.filter(pk=change.current.pk).delete()
            after = None
        action = AuditAction.FEATURE_UPDATE if change.will_archive else AuditAction.FEATURE_DELETE
        _audit(actor, env, action, "feature", change.feature_id, {"archived": False}, after, reason)
    return changes


# --- one at a time --------------------------------------------------------------------------------------


@transaction.atomic
def feature_create(*, spec: FeatureSpec, actor: Actor, env: str, reason: str = "features.create") -> Feature:
    _lock_catalogue()
    if Feature.objects.filter(feature_id=spec.feature_id).exists():
        raise Conflict(f"feature_id: feature {spec.feature_id} already exists", code="feature_already_exists")
    catalogue_apply(features=[spec], plans=[], actor=actor, env=env, reason=reason)
    return Feature.objects.get(feature_id=spec.feature_id)


def feature_update(
    *, feature_id: str, changes: dict, actor: Actor, env: str, reason: str = "features.update"
) -> Feature:
    """Change the given fields of a feature (`new_feature_id` renames it)."""
    with transaction.atomic():
        _lock_catalogue()
        feature = _features_by_id([feature_id]).get(feature_id)
        if feature is None:
            raise ServiceError(f"Feature {feature_id} not found", code="feature_not_found", status=404)
        new_id = changes.pop("new_feature_id", None)
        spec = replace(feature_spec_of(feature), **changes)
        if new_id and new_id != feature_id:
            _check_id("new_feature_id", new_id)
            if Feature.objects.filter(feature_id=new_id).exists():
                raise Conflict(f"new_feature_id: feature {new_id} already exists", code="feature_already_exists")
            Feature.objects.filter(pk=feature.pk).update(feature_id=new_id)
            _audit(actor, env, AuditAction.FEATURE_UPDATE, "feature", new_id, {"feature_id": feature_id}, None, reason)
            spec = replace(spec, feature_id=new_id)
        catalogue_apply(features=[spec], plans=[], actor=actor, env=env, reason=reason)
    return Feature.objects.get(feature_id=spec.feature_id)


@transaction.atomic
def feature_delete(*, feature_id: str, actor: Actor, env: str, reason: str = "features.delete") -> None:
    """Delete a feature nothing refers to; one in use is refused (archive it instead)."""
    _lock_catalogue()
    feature = Feature.objects.select_for_update().filter(feature_id=feature_id).first()
    if feature is None:
        raise ServiceError(f"Feature {feature_id} not found", code="feature_not_found", status=404)
    if _features_in_use([feature]):
        raise Conflict(
            f"feature_id: {feature_id} is used by plans, balances, events or a credit system; archive it instead",
            code="feature_in_use",
        )
    before = asdict(feature_spec_of(feature))
    feature.delete()
    _audit(actor, env, AuditAction.FEATURE_DELETE, "feature", feature_id, before, None, reason)


@transaction.atomic
def feature_set_archived(*, feature_id: str, archived: bool, actor: Actor, env: str, reason: str) -> Feature:
    _lock_catalogue()
    feature = Feature.objects.select_for_update().filter(feature_id=feature_id).first()
    if feature is None:
        raise ServiceError(f"Feature {feature_id} not found", code="feature_not_found", status=404)
    if feature.archived != archived:
        Feature.objects.filter(pk=feature.pk).update(archived=archived)
        _audit(
            actor,
            env,
            AuditAction.FEATURE_UPDATE,
            "feature",
            feature_id,
            {"archived": feature.archived},
            {"archived": archived},
            reason,
        )
        feature.archived = archived
    return feature


@transaction.atomic
def plan_create(*, spec: PlanSpec, actor: Actor, env: str, reason: str = "plans.create") -> Product:
    _lock_catalogue()
    if Product.objects.filter(product_id=spec.plan_id, custom_for__isnull=True).exists():
        raise Conflict(f"plan_id: plan {spec.plan_id} already exists", code="product_already_exists")
    changes = catalogue_apply(features=[], plans=[spec], actor=actor, env=env, reason=reason)
    return changes.plans[0].result


@transaction.atomic
def plan_update(*, plan_id: str, changes: dict, actor: Actor, env: str, reason: str = "plans.update") -> Product:
    """Change the given fields of a plan's newest version: a new version when customers hold it and its
    price or items change (see the module's rule)."""
    _lock_catalogue()
    current = _newest_plans([plan_id]).get(plan_id)
    if current is None:
        raise ServiceError(f"Plan {plan_id} not found", code="product_not_found", status=404)
    spec = replace(plan_spec_of(current), **changes)
    result = catalogue_apply(features=[], plans=[spec], actor=actor, env=env, reason=reason).plans[0]
    return result.result or current


@transaction.atomic
def plan_delete(*, plan_id: str, all_versions: bool, actor: Actor, env: str, reason: str = "plans.delete") -> None:
    """Delete a plan's newest version (every version with `all_versions`); refused while any customer has
    ever been on a version it would delete (archive it instead)."""
    _lock_catalogue()
    versions = list(
        Product.objects.select_for_update().filter(product_id=plan_id, custom_for__isnull=True).order_by("-version")
    )
    if not versions:
        raise ServiceError(f"Plan {plan_id} not found", code="product_not_found", status=404)
    doomed = versions if all_versions else versions[:1]
    if CustomerProduct.objects.filter(product__in=doomed).exists():
        raise Conflict(f"plan_id: customers are or were on {plan_id}; archive it instead", code="plan_has_customers")
    labels = [p.version for p in doomed]
    Product.objects.filter(pk__in=[p.pk for p in doomed]).delete()
    _audit(actor, env, AuditAction.PLAN_DELETE, "product", plan_id, {"versions": labels}, None, reason)


@transaction.atomic
def plan_set_archived(*, plan_id: str, archived: bool, actor: Actor, env: str, reason: str) -> None:
    _lock_catalogue()
    versions = Product.objects.select_for_update().filter(product_id=plan_id, custom_for__isnull=True)
    found = list(versions)
    if not found:
        raise ServiceError(f"Plan {plan_id} not found", code="product_not_found", status=404)
    changed = [p.version for p in found if p.archived != archived]
    if changed:
        versions.filter(~Q(archived=archived)).update(archived=archived)
        _audit(
            actor,
            env,
            AuditAction.PLAN_UPDATE,
            "product",
            plan_id,
            {"archived": not archived, "versions": changed},
            {"archived": archived},
            reason,
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
        raise _refuse(where, f"{currency.upper()} amounts are whole minor units (cents) here")
    return int(minor)
