"""The catalogue one feature or plan at a time (`features.*`, `plans.*`): each a change of the desired state,
applied through the same checks and lock as `catalogue_apply`."""

from __future__ import annotations

from dataclasses import asdict, replace

from django.db import transaction
from django.db.models import Q

from billing.catalogue.checks import (
    check_id,
)
from billing.catalogue.planning import (
    features_by_id,
    features_in_use,
    newest_plans,
)
from billing.catalogue.specs import (
    FeatureSpec,
    PlanSpec,
    feature_spec_of,
    plan_spec_of,
)
from billing.models import (
    CustomerProduct,
    Feature,
    Product,
)
from billing.services.catalogue import (
    audit_catalogue_change,
    catalogue_apply,
    lock_catalogue,
)
from customers.audit import Actor, AuditAction
from customers.errors import Conflict, ServiceError

# --- one at a time --------------------------------------------------------------------------------------


@transaction.atomic
def feature_create(*, spec: FeatureSpec, actor: Actor, env: str, reason: str = "features.create") -> Feature:
    lock_catalogue()
    if Feature.objects.filter(feature_id=spec.feature_id).exists():
        raise Conflict(f"feature_id: feature {spec.feature_id} already exists", code="feature_already_exists")
    catalogue_apply(features=[spec], plans=[], actor=actor, env=env, reason=reason)
    return Feature.objects.get(feature_id=spec.feature_id)


def feature_update(
    *, feature_id: str, changes: dict, actor: Actor, env: str, reason: str = "features.update"
) -> Feature:
    """Change the given fields of a feature (`new_feature_id` renames it)."""
    with transaction.atomic():
        lock_catalogue()
        feature = features_by_id([feature_id]).get(feature_id)
        if feature is None:
            raise ServiceError(f"Feature {feature_id} not found", code="feature_not_found", status=404)
        new_id = changes.pop("new_feature_id", None)
        spec = replace(feature_spec_of(feature), **changes)
        if new_id and new_id != feature_id:
            check_id("new_feature_id", new_id)
            if Feature.objects.filter(feature_id=new_id).exists():
                raise Conflict(f"new_feature_id: feature {new_id} already exists", code="feature_already_exists")
            Feature.objects.filter(pk=feature.pk).update(feature_id=new_id)
            audit_catalogue_change(
                actor, env, AuditAction.FEATURE_UPDATE, "feature", new_id, {"feature_id": feature_id}, None, reason
            )
            spec = replace(spec, feature_id=new_id)
        catalogue_apply(features=[spec], plans=[], actor=actor, env=env, reason=reason)
    return Feature.objects.get(feature_id=spec.feature_id)


@transaction.atomic
def feature_delete(*, feature_id: str, actor: Actor, env: str, reason: str = "features.delete") -> None:
    """Delete a feature nothing refers to; one in use is refused (archive it instead)."""
    lock_catalogue()
    feature = Feature.objects.select_for_update().filter(feature_id=feature_id).first()
    if feature is None:
        raise ServiceError(f"Feature {feature_id} not found", code="feature_not_found", status=404)
    if features_in_use([feature]):
        raise Conflict(
            f"feature_id: {feature_id} is used by plans, balances, events or a credit system; archive it instead",
            code="feature_in_use",
        )
    before = asdict(feature_spec_of(feature))
    feature.delete()
    audit_catalogue_change(actor, env, AuditAction.FEATURE_DELETE, "feature", feature_id, before, None, reason)


@transaction.atomic
def feature_set_archived(*, feature_id: str, archived: bool, actor: Actor, env: str, reason: str) -> Feature:
    lock_catalogue()
    feature = Feature.objects.select_for_update().filter(feature_id=feature_id).first()
    if feature is None:
        raise ServiceError(f"Feature {feature_id} not found", code="feature_not_found", status=404)
    if feature.archived != archived:
        Feature.objects.filter(pk=feature.pk).update(archived=archived)
        audit_catalogue_change(
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
    lock_catalogue()
    if Product.objects.filter(product_id=spec.plan_id, custom_for__isnull=True).exists():
        raise Conflict(f"plan_id: plan {spec.plan_id} already exists", code="product_already_exists")
    changes = catalogue_apply(features=[], plans=[spec], actor=actor, env=env, reason=reason)
    return changes.plans[0].result


@transaction.atomic
def plan_update(*, plan_id: str, changes: dict, actor: Actor, env: str, reason: str = "plans.update") -> Product:
    """Change the given fields of a plan's newest version: a new version when customers hold it and its
    price or items change (see the module's rule)."""
    lock_catalogue()
    current = newest_plans([plan_id]).get(plan_id)
    if current is None:
        raise ServiceError(f"Plan {plan_id} not found", code="product_not_found", status=404)
    spec = replace(plan_spec_of(current), **changes)
    result = catalogue_apply(features=[], plans=[spec], actor=actor, env=env, reason=reason).plans[0]
    return result.result or current


@transaction.atomic
def plan_delete(*, plan_id: str, all_versions: bool, actor: Actor, env: str, reason: str = "plans.delete") -> None:
    """Delete a plan's newest version (every version with `all_versions`); refused while any customer has
    ever been on a version it would delete (archive it instead)."""
    lock_catalogue()
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
    audit_catalogue_change(actor, env, AuditAction.PLAN_DELETE, "product", plan_id, {"versions": labels}, None, reason)


@transaction.atomic
def plan_set_archived(*, plan_id: str, archived: bool, actor: Actor, env: str, reason: str) -> None:
    lock_catalogue()
    versions = Product.objects.select_for_update().filter(product_id=plan_id, custom_for__isnull=True)
    found = list(versions)
    if not found:
        raise ServiceError(f"Plan {plan_id} not found", code="product_not_found", status=404)
    changed = [p.version for p in found if p.archived != archived]
    if changed:
        versions.filter(~Q(archived=archived)).update(archived=archived)
        audit_catalogue_change(
            actor,
            env,
            AuditAction.PLAN_UPDATE,
            "product",
            plan_id,
            {"archived": not archived, "versions": changed},
            {"archived": archived},
            reason,
        )
