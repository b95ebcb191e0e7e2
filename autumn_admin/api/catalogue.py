"""The catalogue the SDKs show an application's users: plans, features and rewards.

The catalogue is one for both environments (billing/models.py: plans, features and rewards have no
environment), so a sandbox key and a live key read the same catalogue; each plan names the key's env.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, product_or_404
from autumn_admin.api.schemas.catalogue import (
    FeatureListOut,
    FeatureOut,
    GetFeatureParams,
    GetPlanParams,
    ListPlansParams,
    PlanListOut,
    PlanOut,
    RewardListOut,
)
from autumn_admin.api.schemas.common import ERRORS, Params
from autumn_admin.api.serializers.catalogue import coupon_json, feature_grant_json, feature_json, plan_json
from billing.models import DISCOUNT_REWARD_TYPES, Feature, Price, Product, ProductItem, Reward, RewardType
from billing.plan_eligibility import eligibility, held_products

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
    products = Product.objects.filter(custom_for__isnull=True)
    if not params.include_archived:
        products = products.filter(archived=False)
    products = list(_with_items(products).order_by("product_id", "-version"))
    if not params.all_versions:
        newest: dict[str, Product] = {}
        for p in products:
            newest.setdefault(p.product_id, p)
        products = list(newest.values())
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
    return {"list": [feature_json(f) for f in Feature.objects.order_by("feature_id")]}


@router.post("/features.get", response={200: FeatureOut, **ERRORS}, operation_id="getFeature", summary="Get a feature")
def features_get(request, params: GetFeatureParams):
    feature = Feature.objects.filter(feature_id=params.feature_id).first()
    if feature is None:
        raise ApiError(404, f"Feature {params.feature_id} not found", "feature_not_found")
    return feature_json(feature)


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
