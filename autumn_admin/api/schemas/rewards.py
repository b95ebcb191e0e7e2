"""The rewards: what rewards.list/get read, the reward (a coupon or a feature grant) as it answers, what
rewards.create/update send and rewards.redeem answers. Like plans
and features, rewards are one catalogue for both environments."""

from __future__ import annotations

from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import CustomerId, Number, Params, Slug, not_supported


class DurationOut(Schema):
    type: Literal["one_off", "months", "forever"]
    length: Number | None


class CouponCodeOut(Schema):
    code: str
    global_max_redemption: Number | None
    first_time_transaction: bool | None


class CouponOut(Schema):
    id: str
    name: str | None
    type: Literal["percentage_discount", "fixed_discount"]
    value: Number
    duration: DurationOut
    plan_ids: list[str] | None
    promo_codes: list[CouponCodeOut]
    created_at: Number


class GrantExpiryOut(Schema):
    type: Literal["day", "week", "month", "year"]
    length: int


class GrantOut(Schema):
    feature_id: str
    included: Number | None
    expiry: GrantExpiryOut | None


class GrantCodeOut(Schema):
    code: str
    max_uses: Number | None


class FeatureGrantOut(Schema):
    id: str
    name: str | None
    grants: list[GrantOut]
    promo_codes: list[GrantCodeOut]
    created_at: Number


class RewardListOut(Schema):
    coupons: list[CouponOut]
    feature_grants: list[FeatureGrantOut]


class RewardOut(Schema):
    """rewards.get and rewards.create: the reward as a coupon or as a feature grant (one of the two)."""

    coupon: CouponOut | None = None
    feature_grant: FeatureGrantOut | None = None


class GetRewardParams(Params):
    reward_id: Slug


class DurationIn(Params):
    type: Literal["one_off", "months", "forever"]
    length: Annotated[int, Field(ge=1, le=1200)] | None = None


class CouponCodeIn(Params):
    code: Slug
    global_max_redemption: not_supported("a promo code here is redeemable without a global limit") = None
    first_time_transaction: not_supported("a promo code here is not limited to first purchases", harmless=(False,)) = (
        None
    )


class CouponIn(Params):
    id: Slug
    name: Slug
    type: Literal["percentage_discount", "fixed_discount"]
    value: Annotated[int | float, Field(ge=0)]
    duration: DurationIn
    plan_ids: not_supported("a discount here applies to every plan; send null", harmless=([],)) = None
    promo_codes: list[CouponCodeIn] = []
    internal_id: not_supported("rewards are named by their id") = None


class GrantExpiryIn(Params):
    type: Literal["month"]
    length: Annotated[int, Field(ge=1, le=1200)]


class GrantIn(Params):
    feature_id: Slug
    included: Annotated[int | float, Field(ge=0)]
    expiry: GrantExpiryIn | None = None


class GrantCodeIn(Params):
    code: Slug
    max_uses: not_supported("a promo code here is redeemable without a use limit") = None


class FeatureGrantIn(Params):
    id: Slug
    name: Slug
    grants: Annotated[list[GrantIn], Field(min_length=1, max_length=1, description="One feature per reward here.")]
    promo_codes: list[GrantCodeIn] = []
    internal_id: not_supported("rewards are named by their id") = None


class CreateRewardParams(Params):
    """Exactly one of coupon and feature_grant."""

    coupon: CouponIn | None = None
    feature_grant: FeatureGrantIn | None = None


class RedeemRewardParams(Params):
    code: Slug
    customer_id: CustomerId


class EntitlementGrantedOut(Schema):
    feature_id: str
    balance: Number


class RedeemedOut(Schema):
    reward_id: str
    entitlements_granted: list[EntitlementGrantedOut]


class UpdateCouponIn(Params):
    name: Slug | None = None
    plan_ids: not_supported("a discount here applies to every plan; send null", harmless=([],)) = None
    promo_codes: list[CouponCodeIn] | None = None
    type: not_supported("a discount's type is fixed: create a new reward") = None
    value: not_supported("a discount's amount is fixed (its Stripe coupons are): create a new reward") = None
    duration: not_supported("a discount's duration is fixed (its Stripe coupons are): create a new reward") = None


class UpdateFeatureGrantIn(Params):
    name: Slug | None = None
    grants: Annotated[list[GrantIn], Field(min_length=1, max_length=1)] | None = None
    promo_codes: list[GrantCodeIn] | None = None


class UpdateRewardParams(Params):
    reward_id: Slug
    coupon: UpdateCouponIn | None = None
    feature_grant: UpdateFeatureGrantIn | None = None
