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

from collections.abc import Iterable
from dataclasses import asdict

from django.db import transaction

from billing.catalogue.planning import (
    plan_catalogue,
)
from billing.catalogue.specs import (
    CatalogueChanges,
    FeatureSpec,
    PlanSpec,
    feature_spec_of,
    plan_spec_of,
)
from billing.models import (
    CreditCost,
    Feature,
    Price,
    Product,
    ProductItem,
)
from billing.quantities import ZERO
from customers.audit import Actor, AuditAction, audit_record

# The key of the transaction-scoped advisory lock that catalogue writes take (any fixed number; "catalog").
CATALOGUE_LOCK_KEY = 0x636174616C6F67


def lock_catalogue() -> None:
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


def audit_catalogue_change(
    actor: Actor, env: str, action: AuditAction, kind: str, target: str, before, after, reason: str
) -> None:
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
    lock_catalogue()
    changes = plan_catalogue(
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
            audit_catalogue_change(actor, env, action, "feature", change.feature_id, change.previous, after, reason)

    for change in changes.plans:
        spec = change.spec
        if change.action == "created":
            product = Product.objects.create(product_id=spec.plan_id, name=spec.name, version=1)
            _set_in_place(product, spec)
            _set_trial(product, spec)
            product.save()
            _write_plan_contents(product, spec, by_id)
            change.result = product
            audit_catalogue_change(
                actor, env, AuditAction.PLAN_CREATE, "product", spec.plan_id, None, _plan_after(product), reason
            )
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
            audit_catalogue_change(actor, env, action, "product", spec.plan_id, before, _plan_after(product), reason)

    for change in changes.plans:
        if change.action != "deleted":
            continue
        versions = Product.objects.filter(product_id=change.plan_id, custom_for__isnull=True)
        if change.will_archive:
            versions.update(archived=True)
        else:
            versions.delete()
        audit_catalogue_change(
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
        audit_catalogue_change(actor, env, action, "feature", change.feature_id, {"archived": False}, after, reason)
    return changes
