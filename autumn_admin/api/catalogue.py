"""The catalogue: what the SDKs show an application's users (plans, features, rewards), and the catalogue
from code: features.create/update/delete, plans.create/update/delete and catalog.preview_update/update, which
Autumn's CLI (`atmn push`) sends a whole `autumn.config.ts` through.

The catalogue is one for both environments (billing/models/: plans, features and rewards have no
environment), so a sandbox key and a live key read and change the same catalogue; each plan names the key's
env, and the customer counts of a preview are those of the key's environment only. Every write goes through
billing/services/catalogue.py and catalogue_items.py with the key as the actor.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from ninja import Router

from autumn_admin.api import catalogue_specs as specs
from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, product_or_404
from autumn_admin.api.schemas.catalogue import (
    ArchiveParams,
    CreateFeatureParams,
    CreatePlanParams,
    DeleteFeatureParams,
    DeletePlanParams,
    FeatureListOut,
    FeatureOut,
    GetFeatureParams,
    GetPlanParams,
    ListPlansParams,
    PlanListOut,
    PlanOut,
    UpdateFeatureParams,
    UpdatePlanParams,
)
from autumn_admin.api.schemas.catalogue_sync import CatalogPreviewOut, CatalogUpdateOut, CatalogUpdateParams
from autumn_admin.api.schemas.common import ERRORS, Params, SuccessOut
from autumn_admin.api.schemas.rewards import (
    CreateRewardParams,
    GetRewardParams,
    RedeemedOut,
    RedeemRewardParams,
    ReferralProgramListOut,
    RewardListOut,
    RewardOut,
    UpdateRewardParams,
)
from autumn_admin.api.serializers.catalogue import (
    coupon_json,
    feature_change_json,
    feature_grant_json,
    feature_json,
    plan_change_json,
    plan_json,
)
from billing.catalogue.planning import catalogue_preview
from billing.catalogue.specs import CatalogueChanges, feature_spec_of
from billing.models import DISCOUNT_REWARD_TYPES, Feature, Price, Product, ProductItem, Reward, RewardType
from billing.money import decimals_of
from billing.plan_eligibility import eligibility, held_products
from billing.quantities import to_number
from billing.services import catalogue_items
from billing.services.catalogue import catalogue_apply
from billing.services.rewards import reward_create, reward_delete, reward_redeem, reward_update
from customers.errors import ServiceError

router = Router(tags=["catalogue"])


def _with_items(products: QuerySet[Product]) -> QuerySet[Product]:
    return products.prefetch_related(
        Prefetch("items", queryset=ProductItem.objects.select_related("feature").order_by("id")),
        Prefetch("prices", queryset=Price.objects.order_by("id")),
    )


def _plans_json(request, products: list[Product], customer_id: str | None) -> list[dict]:
    env = request.api_key.env
    if customer_id is None:
        return [plan_json(p, env) for p in products]
    held = held_products(customer_or_404(request, customer_id))
    return [plan_json(p, env, eligibility(p, held)) for p in products]


@router.post(
    "/plans.list",
    response={200: PlanListOut, **ERRORS},
    operation_id="listPlans",
    exclude_unset=True,
    summary="List plans",
)
def plans_list(request, params: ListPlansParams):
    """The catalogue's plans (never a customer's custom copy): the newest version of each, unless
    all_versions; archived ones only with include_archived. With customer_id, each plan says what
    attaching it would do for that customer (customer_eligibility)."""
    products = list(_with_items(Product.objects.filter(custom_for__isnull=True)).order_by("product_id", "-version"))
    if not params.all_versions:
        newest: dict[str, Product] = {}
        for p in products:
            newest.setdefault(p.product_id, p)
        products = list(newest.values())
    if not params.include_archived:  # after choosing the newest: an archived plan's older versions stay hidden
        products = [p for p in products if not p.archived]
    return {"list": _plans_json(request, products, params.customer_id)}


@router.post(
    "/plans.get",
    response={200: PlanOut, **ERRORS},
    operation_id="getPlan",
    exclude_unset=True,
    summary="Get a plan",
)
def plans_get(request, params: GetPlanParams):
    """One plan of the catalogue: the given version, or the newest one that is not archived."""
    found = product_or_404(params.plan_id, params.version)
    product = _with_items(Product.objects.filter(pk=found.pk)).get()
    return plan_json(product, request.api_key.env)


@router.post(
    "/features.list", response={200: FeatureListOut, **ERRORS}, operation_id="listFeatures", summary="List features"
)
def features_list(request, params: Params):
    """Every feature of the catalogue by id, archived ones too (`archived` says which)."""
    return {"list": [feature_json(f) for f in _features().order_by("feature_id")]}


def _features() -> QuerySet[Feature]:
    return Feature.objects.prefetch_related("credit_schema__metered_feature")


def _feature_or_404(feature_id: str) -> Feature:
    feature = _features().filter(feature_id=feature_id).first()
    if feature is None:
        raise ApiError(404, f"Feature {feature_id} not found", "feature_not_found")
    return feature


@router.post("/features.get", response={200: FeatureOut, **ERRORS}, operation_id="getFeature", summary="Get a feature")
def features_get(request, params: GetFeatureParams):
    return feature_json(_feature_or_404(params.feature_id))


@router.post(
    "/rewards.list", response={200: RewardListOut, **ERRORS}, operation_id="listRewards", summary="List rewards"
)
def rewards_list(request, params: Params):
    """The active rewards: discounts as coupons, feature grants as feature_grants. A free-product reward
    has no place in Autumn's two lists and is left out, as are retired (inactive) rewards."""
    rewards = list(Reward.objects.filter(active=True).select_related("grant_feature").order_by("reward_id"))
    return {
        "coupons": [coupon_json(r) for r in rewards if r.type in DISCOUNT_REWARD_TYPES],
        "feature_grants": [feature_grant_json(r) for r in rewards if r.type == RewardType.FEATURE_GRANT],
    }


def _reward_or_404(reward_id: str) -> Reward:
    """A reward of the catalogue (shared by both environments, like plans and features), active or retired."""
    reward = Reward.objects.select_related("grant_feature").filter(reward_id=reward_id).first()
    if reward is None:
        raise ApiError(404, f"Reward {reward_id} not found", "reward_not_found")
    return reward


def _reward_json(reward: Reward) -> dict:
    if reward.type in DISCOUNT_REWARD_TYPES:
        return {"coupon": coupon_json(reward)}
    if reward.type == RewardType.FEATURE_GRANT:
        return {"feature_grant": feature_grant_json(reward)}
    raise ApiError(
        422,
        f"Reward {reward.reward_id} gives a free product, which Autumn's API has no shape for: see it in /admin/.",
        "not_supported",
    )


@router.post(
    "/rewards.get",
    response={200: RewardOut, **ERRORS},
    exclude_unset=True,
    operation_id="getReward",
    summary="Get a reward",
)
def rewards_get(request, params: GetRewardParams):
    return _reward_json(_reward_or_404(params.reward_id))


def _minor_units(value, currency: str) -> Decimal:
    """Money off in major units (10.5) as the minor units a fixed discount stores (1050); a fraction of a cent is
    refused."""
    amount = Decimal(str(value)) * 10 ** decimals_of(currency)
    if amount != amount.to_integral_value():
        raise ApiError(422, f"coupon.value: {value} is not a whole number of cents.", "invalid_inputs")
    return amount


@router.post(
    "/rewards.create",
    response={200: RewardOut, **ERRORS},
    exclude_unset=True,
    operation_id="createReward",
    summary="Create a reward",
)
def rewards_create(request, params: CreateRewardParams):
    """A discount (coupon) or a feature grant, with its promo codes. The catalogue is shared by both
    environments: a sandbox key creates it for live customers too, as with plans and features."""
    if (params.coupon is None) == (params.feature_grant is None):
        raise ApiError(422, "Send exactly one of coupon and feature_grant.", "invalid_inputs")
    if params.coupon is not None:
        coupon = params.coupon
        value = Decimal(str(coupon.value))
        if coupon.type == RewardType.FIXED_DISCOUNT:
            value = _minor_units(coupon.value, "usd")
        if coupon.duration.type == "months" and coupon.duration.length is None:
            raise ApiError(422, "coupon.duration.length: a duration in months needs its length.", "invalid_inputs")
        reward = reward_create(
            reward_id=coupon.id,
            name=coupon.name,
            type=coupon.type,
            value=value,
            duration=coupon.duration.type,
            duration_months=coupon.duration.length if coupon.duration.type == "months" else None,
            promo_codes=[c.code for c in coupon.promo_codes],
            actor=request.api_key,
        )
    else:
        grant_reward = params.feature_grant
        [grant] = grant_reward.grants
        feature = Feature.objects.filter(feature_id=grant.feature_id, archived=False).first()
        if feature is None:
            raise ApiError(404, f"Feature {grant.feature_id} not found", "feature_not_found")
        reward = reward_create(
            reward_id=grant_reward.id,
            name=grant_reward.name,
            type=RewardType.FEATURE_GRANT,
            value=Decimal(str(grant.included)),
            duration="months" if grant.expiry else "forever",
            duration_months=grant.expiry.length if grant.expiry else None,
            promo_codes=[c.code for c in grant_reward.promo_codes],
            grant_feature=feature,
            actor=request.api_key,
        )
    return _reward_json(_reward_or_404(reward.reward_id))


@router.post(
    "/rewards.update",
    response={200: RewardOut, **ERRORS},
    exclude_unset=True,
    operation_id="updateReward",
    summary="Update a reward",
)
def rewards_update(request, params: UpdateRewardParams):
    """A reward's name and promo codes (replaced when sent); a feature grant's grants (replaced when sent).
    Send coupon for a discount, feature_grant for a grant."""
    reward = _reward_or_404(params.reward_id)
    if params.coupon is not None and params.feature_grant is not None:
        raise ApiError(422, "Send one of coupon and feature_grant.", "invalid_inputs")
    is_grant = reward.type == RewardType.FEATURE_GRANT
    if (params.coupon is not None and is_grant) or (params.feature_grant is not None and not is_grant):
        sent = "coupon" if params.coupon is not None else "feature_grant"
        raise ApiError(422, f"{sent}: reward {reward.reward_id} is not a {sent}.", "invalid_inputs")
    changes = params.coupon or params.feature_grant
    grant = None
    if params.feature_grant is not None and params.feature_grant.grants is not None:
        [wanted] = params.feature_grant.grants
        feature = Feature.objects.filter(feature_id=wanted.feature_id, archived=False).first()
        if feature is None:
            raise ApiError(404, f"Feature {wanted.feature_id} not found", "feature_not_found")
        grant = (feature, Decimal(str(wanted.included)), wanted.expiry.length if wanted.expiry else None)
    reward_update(
        reward=reward,
        actor=request.api_key,
        name=changes.name if changes is not None else None,
        promo_codes=[c.code for c in changes.promo_codes]
        if changes is not None and changes.promo_codes is not None
        else None,
        grant=grant,
    )
    return _reward_json(_reward_or_404(reward.reward_id))


@router.post(
    "/rewards.delete",
    response={200: SuccessOut, **ERRORS},
    operation_id="deleteReward",
    summary="Delete a reward",
)
def rewards_delete(request, params: GetRewardParams):
    """A reward no customer ever had; one that was applied is a 409 (retire it in /admin/ instead)."""
    reward_delete(reward=_reward_or_404(params.reward_id), actor=request.api_key)
    return {"success": True}


@router.post(
    "/rewards.redeem",
    response={200: RedeemedOut, **ERRORS},
    operation_id="redeemRewardCode",
    summary="Redeem a promo code",
)
def rewards_redeem(request, params: RedeemRewardParams):
    """A customer of the key's environment redeems a promo code: a discount applies to its subscriptions, a
    feature grant adds a balance beside its plans."""
    customer = customer_or_404(request, params.customer_id)
    reward, granted = reward_redeem(customer=customer, code=params.code, actor=request.api_key)
    return {
        "reward_id": reward.reward_id,
        "entitlements_granted": [
            {"feature_id": b.feature.feature_id, "balance": to_number(b.granted)} for b in granted
        ],
    }


@router.post(
    "/referral_programs.list",
    response={200: ReferralProgramListOut, **ERRORS},
    operation_id="listReferralPrograms",
    summary="List referral programs",
)
def referral_programs_list(request, params: Params):
    """Referral programs are not offered here: the list is empty (atmn pull reads it)."""
    return {"list": []}


# --- the catalogue from code ----------------------------------------------------------------------


def _env(request) -> str:
    return request.api_key.env


def _plan_out(request, product: Product) -> dict:
    return plan_json(_with_items(Product.objects.filter(pk=product.pk)).get(), _env(request))


@router.post(
    "/features.create",
    response={200: FeatureOut, **ERRORS},
    operation_id="createFeature",
    summary="Create a feature",
)
def features_create(request, params: CreateFeatureParams):
    """A boolean, metered (consumable: used up and reset; or not: allocated, like seats) or credit_system
    feature (its credit_schema: what one unit of each metered feature costs in credits)."""
    feature = catalogue_items.feature_create(spec=specs.feature_spec(params), actor=request.api_key, env=_env(request))
    return feature_json(_feature_or_404(feature.feature_id))


@router.post(
    "/features.update",
    response={200: FeatureOut, **ERRORS},
    operation_id="updateFeature",
    summary="Update a feature",
)
def features_update(request, params: UpdateFeatureParams):
    """Change the fields sent; `new_feature_id` renames it. A feature in use can't change its type."""
    current = _feature_or_404(params.feature_id)
    feature = catalogue_items.feature_update(
        feature_id=params.feature_id,
        changes=specs.feature_changes(params, feature_spec_of(current)),
        actor=request.api_key,
        env=_env(request),
    )
    return feature_json(_feature_or_404(feature.feature_id))


@router.post(
    "/features.delete",
    response={200: SuccessOut, **ERRORS},
    operation_id="deleteFeature",
    summary="Delete a feature",
)
def features_delete(request, params: DeleteFeatureParams):
    """Only a feature nothing refers to; one in use is a 409 (archive it with features.update)."""
    catalogue_items.feature_delete(feature_id=params.feature_id, actor=request.api_key, env=_env(request))
    return {"success": True}


@router.post(
    "/plans.create",
    response={200: PlanOut, **ERRORS},
    operation_id="createPlan",
    exclude_unset=True,
    summary="Create a plan",
)
def plans_create(request, params: CreatePlanParams):
    """A plan with its group, add-on and default (auto_enable) flags, its price and its items: each an
    included allowance (or unlimited), a reset interval, and optionally a usage price for what goes beyond
    (billing_method usage_based) capped by max_purchase."""
    product = catalogue_items.plan_create(spec=specs.plan_spec(params), actor=request.api_key, env=_env(request))
    return _plan_out(request, product)


@router.post(
    "/plans.update",
    response={200: PlanOut, **ERRORS},
    operation_id="updatePlan",
    exclude_unset=True,
    summary="Update a plan",
)
def plans_update(request, params: UpdatePlanParams):
    """Change the fields sent (items: the whole new list; price: null removes it). When customers hold the
    plan and its price or items change, the answer is a new version; they keep theirs until moved."""
    if params.version is not None:
        newest = product_or_404(params.plan_id)
        if params.version != newest.version:
            raise ApiError(
                409,
                f"version: only the newest version of {params.plan_id} (v{newest.version}) changes here",
                "invalid_inputs",
            )
    product = catalogue_items.plan_update(
        plan_id=params.plan_id, changes=specs.plan_changes(params), actor=request.api_key, env=_env(request)
    )
    return _plan_out(request, product)


@router.post("/plans.delete", response={200: SuccessOut, **ERRORS}, operation_id="deletePlan", summary="Delete a plan")
def plans_delete(request, params: DeletePlanParams):
    """The newest version (every version with all_versions); a 409 if any customer was ever on one of them."""
    catalogue_items.plan_delete(
        plan_id=params.plan_id, all_versions=bool(params.all_versions), actor=request.api_key, env=_env(request)
    )
    return {"success": True}


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
    env = _env(request)
    features = {f.feature_id: f for f in _features()}
    plan_changes = []
    for change in changes.plans:
        resolved = None
        if change.current is not None and change.action != "deleted":
            resolved = plan_json(_with_items(Product.objects.filter(pk=change.current.pk)).get(), env)
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
    changes = catalogue_preview(**_catalogue_request(params), env=_env(request))
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
        **_catalogue_request(params), actor=request.api_key, env=_env(request), reason="catalog.update"
    )
    written = [c.result.pk for c in changes.plans if c.result is not None]
    env = _env(request)
    plans = _with_items(Product.objects.filter(pk__in=written)).order_by("product_id")
    touched = [c.feature_id for c in changes.features if c.action in ("create", "update")]
    return {
        "plans": [plan_json(p, env) for p in plans],
        "features": [feature_json(f) for f in _features().filter(feature_id__in=touched).order_by("feature_id")],
        "rewards": [],
        "referral_programs": [],
    }


# --- the older paths atmn calls to archive, restore and delete one feature or plan -------------------


@router.delete("/features/{feature_id}", response={200: SuccessOut, **ERRORS}, include_in_schema=False)
def feature_delete_rest(request, feature_id: str):
    catalogue_items.feature_delete(feature_id=feature_id, actor=request.api_key, env=_env(request))
    return {"success": True}


@router.post("/features/{feature_id}", response={200: FeatureOut, **ERRORS}, include_in_schema=False)
def feature_archive_rest(request, feature_id: str, params: ArchiveParams):
    catalogue_items.feature_set_archived(
        feature_id=feature_id,
        archived=params.archived,
        actor=request.api_key,
        env=_env(request),
        reason="features.update",
    )
    return feature_json(_feature_or_404(feature_id))


@router.delete("/products/{plan_id}", response={200: SuccessOut, **ERRORS}, include_in_schema=False)
def plan_delete_rest(request, plan_id: str, all_versions: bool = True):
    catalogue_items.plan_delete(plan_id=plan_id, all_versions=all_versions, actor=request.api_key, env=_env(request))
    return {"success": True}


@router.post("/products/{plan_id}", response={200: PlanOut, **ERRORS}, exclude_unset=True, include_in_schema=False)
def plan_archive_rest(request, plan_id: str, params: ArchiveParams):
    catalogue_items.plan_set_archived(
        plan_id=plan_id, archived=params.archived, actor=request.api_key, env=_env(request), reason="plans.update"
    )
    product = Product.objects.filter(product_id=plan_id, custom_for__isnull=True).order_by("-version").first()
    return _plan_out(request, product)
