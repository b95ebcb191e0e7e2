"""The rewards of the catalogue: rewards.list/get/create/update/delete, rewards.redeem (a customer redeems a
promo code). Referral programs are in referrals.py. Rewards are one catalogue for both environments,
like plans and features; a redemption is a customer's of the key's environment. Every write goes through
billing/services/rewards.py with the key as the actor.
"""

from __future__ import annotations

from decimal import Decimal

from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404
from autumn_admin.api.schemas.common import ERRORS, Params, SuccessOut
from autumn_admin.api.schemas.rewards import (
    CreateRewardParams,
    GetRewardParams,
    RedeemedOut,
    RedeemRewardParams,
    RewardListOut,
    RewardOut,
    UpdateRewardParams,
)
from autumn_admin.api.serializers.catalogue import coupon_json, feature_grant_json
from billing.models import DISCOUNT_REWARD_TYPES, Feature, Reward, RewardType
from billing.money import decimals_of
from billing.quantities import to_number
from billing.services.rewards import reward_create, reward_delete, reward_redeem, reward_update

router = Router(tags=["catalogue"])


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
