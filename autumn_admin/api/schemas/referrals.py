"""Referral programs and codes: what referral_programs.* and referrals.* read and answer (autumn_sdk's
createreferralprogramop … redeemreferralcodeop)."""

from __future__ import annotations

from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import CustomerId, Number, Params, Slug, not_supported

RedeemOnLiteral = Literal["customer_creation", "checkout"]
ReceivedByLiteral = Literal["referrer", "all"]
PlanIds = Annotated[list[Slug], Field(max_length=100)]
MaxRedemptions = Annotated[int, Field(ge=1, le=1_000_000)]


class ReferralProgramOut(Schema):
    id: str
    reward_id: str
    redeem_on: RedeemOnLiteral
    received_by: ReceivedByLiteral
    created_at: Number
    max_redemptions: Number | None
    plan_ids: list[str] | None
    exclude_trial: bool | None


class ReferralProgramListOut(Schema):
    list: list[ReferralProgramOut]


class GetReferralProgramParams(Params):
    referral_program_id: Slug


class CreateReferralProgramParams(Params):
    id: Slug
    reward_id: Slug
    redeem_on: RedeemOnLiteral
    received_by: ReceivedByLiteral
    max_redemptions: MaxRedemptions | None = None
    plan_ids: PlanIds | None = None
    exclude_trial: bool | None = None
    internal_id: not_supported("referral programs are named by their id") = None


class UpdateReferralProgramParams(Params):
    """A field left out keeps its value; max_redemptions, plan_ids or exclude_trial sent as null clear it."""

    referral_program_id: Slug
    reward_id: Slug | None = None
    redeem_on: RedeemOnLiteral | None = None
    received_by: ReceivedByLiteral | None = None
    max_redemptions: MaxRedemptions | None = None
    plan_ids: PlanIds | None = None
    exclude_trial: bool | None = None


class CreateReferralCodeParams(Params):
    customer_id: CustomerId
    program_id: Slug


class ReferralCodeOut(Schema):
    code: str
    customer_id: str
    created_at: Number


class RedeemReferralCodeParams(Params):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    customer_id: CustomerId


class ReferralRedemptionOut(Schema):
    id: str
    customer_id: str
    reward_id: str
