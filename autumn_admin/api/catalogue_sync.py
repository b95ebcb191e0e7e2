"""The whole catalogue at once: catalog.preview_update and catalog.update, which Autumn's CLI (`atmn push`)
sends a whole `autumn.config.ts` through. The catalogue is one for both environments: the customer counts of
a preview are those of the key's environment only. The update goes through billing/services/catalogue.py with
the key as the actor; the rewards a request sends are compared with ours (they are set up in Django admin
here), never written.
"""

from __future__ import annotations

from ninja import Router

from autumn_admin.api import catalogue_specs as specs
from autumn_admin.api.catalogue import catalogue_features, with_items
from autumn_admin.api.schemas.catalogue_sync import CatalogPreviewOut, CatalogUpdateOut, CatalogUpdateParams
from autumn_admin.api.schemas.common import ERRORS
from autumn_admin.api.serializers.catalogue import (
    coupon_json,
    feature_change_json,
    feature_grant_json,
    feature_json,
    plan_change_json,
    plan_json,
)
from billing.catalogue.planning import catalogue_preview
from billing.catalogue.specs import CatalogueChanges
from billing.models import DISCOUNT_REWARD_TYPES, Product, Reward, RewardType
from billing.services.catalogue import catalogue_apply
from customers.errors import ServiceError

router = Router(tags=["catalogue"])


def _catalogue_request(params: CatalogUpdateParams) -> dict:
    return {
        "features": [specs.feature_spec(f, f"features[{n}]") for n, f in enumerate(params.features or [])],
        "plans": [specs.plan_spec(p, f"plans[{n}]") for n, p in enumerate(params.plans or [])],
        # Autumn's default leaves what the request doesn't name; atmn push sends skip_deletions: false.
        "remove_missing": params.skip_deletions is False,
        "skip_feature_ids": params.skip_feature_ids or [],
        "skip_plan_ids": params.skip_plan_ids or [],
    }


def _reward_key(body: dict):
    """What identifies a reward's terms, as rewards.list shows them and atmn sends them back."""
    if "coupon" in body or "feature_grant" in body:
        body = body.get("coupon") or body.get("feature_grant") or {}
    duration = body.get("duration") or {}
    codes = sorted(str(c.get("code")) for c in body.get("promo_codes") or [] if isinstance(c, dict))
    grants = sorted(
        (str(g.get("feature_id")), g.get("included")) for g in body.get("grants") or [] if isinstance(g, dict)
    )
    return (
        body.get("name"),
        body.get("type"),
        body.get("value"),
        duration.get("type"),
        duration.get("length"),
        tuple(codes),
        tuple(grants),
    )


def _reward_changes(params: CatalogUpdateParams) -> list[dict]:
    """Rewards are set up in Django admin here: a request's rewards are compared with ours, not written."""
    if params.rewards is None:
        return []
    rewards = list(Reward.objects.filter(active=True).select_related("grant_feature").order_by("reward_id"))
    ours = {r.reward_id: _reward_key(coupon_json(r)) for r in rewards if r.type in DISCOUNT_REWARD_TYPES}
    ours |= {r.reward_id: _reward_key(feature_grant_json(r)) for r in rewards if r.type == RewardType.FEATURE_GRANT}
    changes, seen = [], set()
    for body in params.rewards:
        inner = body.get("coupon") or body.get("feature_grant") or body
        rid = str(inner.get("id", ""))
        seen.add(rid)
        action = "created" if rid not in ours else "none" if ours[rid] == _reward_key(body) else "updated"
        changes.append({"id": rid, "action": action})
    if params.skip_deletions is False:
        changes += [{"id": rid, "action": "deleted"} for rid in ours if rid not in seen]
    return changes


def _refuse_reward_changes(changes: list[dict]) -> None:
    for change in changes:
        if change["action"] != "none":
            raise ServiceError(
                f"rewards: reward {change['id']} would be {change['action']}, but rewards are set up in Django "
                "admin here (/admin/); leave the rewards as atmn pull wrote them",
                code="invalid_inputs",
                field="rewards",
                status=422,
            )


def _refuse_referral_programs(params: CatalogUpdateParams) -> None:
    if params.referral_programs:
        raise ServiceError(
            "referral_programs: referral programs are not offered by this server",
            code="invalid_inputs",
            field="referral_programs",
            status=422,
        )
    if params.migration:
        raise ServiceError(
            "migration: migrations are not offered; move customers with billing.update",
            code="invalid_inputs",
            field="migration",
            status=422,
        )


def _preview_json(request, changes: CatalogueChanges, reward_changes: list[dict]) -> dict:
    env = request.api_key.env
    features = {f.feature_id: f for f in catalogue_features()}
    plan_changes = []
    for change in changes.plans:
        resolved = None
        if change.current is not None and change.action != "deleted":
            resolved = plan_json(with_items(Product.objects.filter(pk=change.current.pk)).get(), env)
        if resolved is not None and change.spec is not None:
            resolved["name"] = change.spec.name
        plan_changes.append(plan_change_json(change, env, resolved))
    return {
        "plan_changes": plan_changes,
        "feature_changes": [feature_change_json(c, features.get(c.feature_id)) for c in changes.features],
        "reward_changes": reward_changes,
        "referral_program_changes": [],
    }


@router.post(
    "/catalog.preview_update",
    response={200: CatalogPreviewOut, **ERRORS},
    operation_id="previewUpdateCatalog",
    exclude_unset=True,
    summary="Preview a catalogue update",
)
def catalog_preview_update(request, params: CatalogUpdateParams):
    """What catalog.update would do with the same body, changing nothing: each feature (create, update,
    remove: deleted, or archived when something still refers to it) and plan (created, updated, deleted),
    and for a plan customers hold whether the change makes a new version (versionable)."""
    _refuse_referral_programs(params)
    changes = catalogue_preview(**_catalogue_request(params), env=request.api_key.env)
    return _preview_json(request, changes, _reward_changes(params))


@router.post(
    "/catalog.update",
    response={200: CatalogUpdateOut, **ERRORS},
    operation_id="updateCatalog",
    exclude_unset=True,
    summary="Update the catalogue",
)
def catalog_update(request, params: CatalogUpdateParams):
    """Make the catalogue what the body describes, all or nothing (a bad field is a 4xx naming it, and
    nothing is written). With skip_deletions false, what the body leaves out is removed."""
    _refuse_referral_programs(params)
    _refuse_reward_changes(_reward_changes(params))
    changes = catalogue_apply(
        **_catalogue_request(params), actor=request.api_key, env=request.api_key.env, reason="catalog.update"
    )
    written = [c.result.pk for c in changes.plans if c.result is not None]
    env = request.api_key.env
    plans = with_items(Product.objects.filter(pk__in=written)).order_by("product_id")
    touched = [c.feature_id for c in changes.features if c.action in ("create", "update")]
    return {
        "plans": [plan_json(p, env) for p in plans],
        "features": [
            feature_json(f) for f in catalogue_features().filter(feature_id__in=touched).order_by("feature_id")
        ],
        "rewards": [],
        "referral_programs": [],
    }
