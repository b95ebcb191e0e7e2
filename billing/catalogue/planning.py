"""Planning a catalogue change: what a request would create, change, version or remove, read from the stored
catalogue and its holders; `catalogue_preview` answers it without writing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

from django.db.models import Count

from billing.catalogue.checks import (
    check_feature,
    check_plan,
    settled_feature,
    settled_plan,
)
from billing.catalogue.specs import (
    CatalogueChanges,
    FeatureChange,
    FeatureSpec,
    PlanChange,
    PlanSpec,
    feature_spec_of,
    plan_spec_of,
    refuse,
)
from billing.models import (
    HELD_PRODUCT_STATUSES,
    Balance,
    CreditCost,
    CustomerProduct,
    Event,
    Feature,
    Price,
    Product,
    ProductItem,
    Reward,
)


def features_by_id(ids: Iterable[str] | None = None, *, lock: bool = False) -> dict[str, Feature]:
    rows = Feature.objects.prefetch_related("credit_schema__metered_feature")
    if ids is not None:
        rows = rows.filter(feature_id__in=list(ids))
    if lock:
        rows = rows.select_for_update(of=("self",))
    return {f.feature_id: f for f in rows.order_by("feature_id")}


def newest_plans(ids: Iterable[str] | None = None, *, lock: bool = False) -> dict[str, Product]:
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


def features_in_use(features: Iterable[Feature]) -> set[int]:
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


def plan_catalogue(
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
            raise refuse(f"features[{n}].feature_id", f"{spec.feature_id} is listed twice")
    for n, spec in enumerate(plans):
        if spec.plan_id in {s.plan_id for s in plans[:n]}:
            raise refuse(f"plans[{n}].plan_id", f"{spec.plan_id} is listed twice")

    stored_features = features_by_id(None if remove_missing else [f.feature_id for f in features], lock=lock)
    stored_plans = newest_plans(None if remove_missing else [p.plan_id for p in plans], lock=lock)
    # Plan items may name features of this request, or features already stored.
    known_types = {fid: f.type for fid, f in features_by_id().items()} if not remove_missing else {}
    known_types.update({fid: f.type for fid, f in stored_features.items()})
    known_types.update({f.feature_id: f.type for f in features})

    feature_changes: list[FeatureChange] = []
    for n, spec in enumerate(features):
        current = stored_features.get(spec.feature_id)
        spec = features[n] = settled_feature(spec, current)
        check_feature(f"features[{n}]", spec, known_types)
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
            if features_in_use([current]):
                raise refuse(
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
        spec = plans[n] = settled_plan(spec, current)
        check_plan(f"plans[{n}]", spec, known_types)
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
            raise refuse(
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
        in_use = features_in_use(gone)
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
            raise refuse(
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
    return plan_catalogue(
        features=features,
        plans=plans,
        env=env,
        remove_missing=remove_missing,
        skip_feature_ids=skip_feature_ids,
        skip_plan_ids=skip_plan_ids,
    )
