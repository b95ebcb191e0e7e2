"""The catalogue's plans and features: what the SDKs show an application's users (plans.list/get,
features.list/get), and the catalogue from code one feature or plan at a time (features.create/update/delete,
plans.create/update/delete, and the older paths atmn archives, restores and deletes one through). The rewards
are in rewards.py; the whole catalogue at once (catalog.preview_update/update, which Autumn's CLI `atmn push`
sends a whole `autumn.config.ts` through) in catalogue_sync.py.

The catalogue is one for both environments (billing/models/: plans, features and rewards have no
environment), so a sandbox key and a live key read and change the same catalogue; each plan names the key's
env. Every write goes through billing/services/catalogue_items.py with the key as the actor.
"""

from __future__ import annotations

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
from autumn_admin.api.schemas.common import ERRORS, Params, SuccessOut
from autumn_admin.api.serializers.catalogue import feature_json, plan_json
from billing.catalogue.specs import feature_spec_of
from billing.models import Feature, Price, Product, ProductItem
from billing.plan_eligibility import eligibility, held_products
from billing.services import catalogue_items

router = Router(tags=["catalogue"])


def with_items(products: QuerySet[Product]) -> QuerySet[Product]:
    """The plans with their items (and each item's feature) and prices, as plan_json reads them."""
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
    products = list(with_items(Product.objects.filter(custom_for__isnull=True)).order_by("product_id", "-version"))
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
    product = with_items(Product.objects.filter(pk=found.pk)).get()
    return plan_json(product, request.api_key.env)


@router.post(
    "/features.list", response={200: FeatureListOut, **ERRORS}, operation_id="listFeatures", summary="List features"
)
def features_list(request, params: Params):
    """Every feature of the catalogue by id, archived ones too (`archived` says which)."""
    return {"list": [feature_json(f) for f in catalogue_features().order_by("feature_id")]}


def catalogue_features() -> QuerySet[Feature]:
    """The features with their credit schemas, as feature_json reads them."""
    return Feature.objects.prefetch_related("credit_schema__metered_feature")


def _feature_or_404(feature_id: str) -> Feature:
    feature = catalogue_features().filter(feature_id=feature_id).first()
    if feature is None:
        raise ApiError(404, f"Feature {feature_id} not found", "feature_not_found")
    return feature


@router.post("/features.get", response={200: FeatureOut, **ERRORS}, operation_id="getFeature", summary="Get a feature")
def features_get(request, params: GetFeatureParams):
    return feature_json(_feature_or_404(params.feature_id))


# --- one feature or plan at a time, from code -------------------------------------------------------


def _env(request) -> str:
    return request.api_key.env


def _plan_out(request, product: Product) -> dict:
    return plan_json(with_items(Product.objects.filter(pk=product.pk)).get(), _env(request))


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
