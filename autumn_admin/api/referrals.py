"""Referral programs (referral_programs.list/get/create/update/delete) and referral codes (referrals.create_code,
referrals.redeem_code), as Autumn serves them. A program is of the key's environment, as are its codes and the
customers who share and redeem them; every write goes through billing/services/referrals.py with the key as the
actor."""

from __future__ import annotations

from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404
from autumn_admin.api.schemas.common import ERRORS, Params, SuccessOut
from autumn_admin.api.schemas.referrals import (
    CreateReferralCodeParams,
    CreateReferralProgramParams,
    GetReferralProgramParams,
    RedeemReferralCodeParams,
    ReferralCodeOut,
    ReferralProgramListOut,
    ReferralProgramOut,
    ReferralRedemptionOut,
    UpdateReferralProgramParams,
)
from autumn_admin.api.serializers.referrals import referral_program_json
from billing.models import ReferralProgram, Reward
from billing.services.referrals import (
    UNCHANGED,
    referral_code_create,
    referral_code_redeem,
    referral_program_create,
    referral_program_delete,
    referral_program_update,
)
from billing.shapes.units import ms

router = Router(tags=["referrals"])


def _program_or_404(request, program_id: str) -> ReferralProgram:
    program = (
        ReferralProgram.objects.select_related("reward").filter(env=request.api_key.env, program_id=program_id).first()
    )
    if program is None:
        raise ApiError(404, f"Referral program {program_id} not found", "reward_program_not_found")
    return program


def _reward_or_404(reward_id: str) -> Reward:
    reward = Reward.objects.filter(reward_id=reward_id).first()
    if reward is None:
        raise ApiError(404, f"Reward {reward_id} not found", "reward_not_found")
    return reward


@router.post(
    "/referral_programs.list",
    response={200: ReferralProgramListOut, **ERRORS},
    operation_id="listReferralPrograms",
    summary="List referral programs",
)
def referral_programs_list(request, params: Params):
    """The referral programs of the key's environment (atmn pull reads them)."""
    programs = ReferralProgram.objects.filter(env=request.api_key.env).select_related("reward")
    return {"list": [referral_program_json(p) for p in programs.order_by("program_id")]}


@router.post(
    "/referral_programs.get",
    response={200: ReferralProgramOut, **ERRORS},
    operation_id="getReferralProgram",
    summary="Get a referral program",
)
def referral_programs_get(request, params: GetReferralProgramParams):
    return referral_program_json(_program_or_404(request, params.referral_program_id))


@router.post(
    "/referral_programs.create",
    response={200: ReferralProgramOut, **ERRORS},
    operation_id="createReferralProgram",
    summary="Create a referral program",
)
def referral_programs_create(request, params: CreateReferralProgramParams):
    """A program of the key's environment linked to a reward of the catalogue (a discount or a feature grant)."""
    program = referral_program_create(
        env=request.api_key.env,
        program_id=params.id,
        reward=_reward_or_404(params.reward_id),
        redeem_on=params.redeem_on,
        received_by=params.received_by,
        max_redemptions=params.max_redemptions,
        plan_ids=params.plan_ids,
        exclude_trial=params.exclude_trial,
        actor=request.api_key,
    )
    return referral_program_json(program)


@router.post(
    "/referral_programs.update",
    response={200: ReferralProgramOut, **ERRORS},
    operation_id="updateReferralProgram",
    summary="Update a referral program",
)
def referral_programs_update(request, params: UpdateReferralProgramParams):
    """Fields left out keep their values; max_redemptions, plan_ids and exclude_trial sent as null are cleared."""
    program = _program_or_404(request, params.referral_program_id)
    sent = params.model_fields_set
    for field in ("reward_id", "redeem_on", "received_by"):
        if field in sent and getattr(params, field) is None:
            raise ApiError(422, f"{field}: may not be null; leave it out to keep it.", "invalid_inputs")
    program = referral_program_update(
        program=program,
        actor=request.api_key,
        reward=_reward_or_404(params.reward_id) if params.reward_id is not None else None,
        redeem_on=params.redeem_on,
        received_by=params.received_by,
        max_redemptions=params.max_redemptions if "max_redemptions" in sent else UNCHANGED,
        plan_ids=params.plan_ids if "plan_ids" in sent else UNCHANGED,
        exclude_trial=params.exclude_trial if "exclude_trial" in sent else UNCHANGED,
    )
    return referral_program_json(program)


@router.post(
    "/referral_programs.delete",
    response={200: SuccessOut, **ERRORS},
    operation_id="deleteReferralProgram",
    summary="Delete a referral program",
)
def referral_programs_delete(request, params: GetReferralProgramParams):
    """A program none of whose codes was redeemed (its codes go with it); one with redemptions is a 409."""
    referral_program_delete(program=_program_or_404(request, params.referral_program_id), actor=request.api_key)
    return {"success": True}


@router.post(
    "/referrals.create_code",
    response={200: ReferralCodeOut, **ERRORS},
    operation_id="createReferralCode",
    summary="Create a referral code",
)
def referrals_create_code(request, params: CreateReferralCodeParams):
    """The customer's code for the program: the same code every time it is asked for."""
    program = _program_or_404(request, params.program_id)
    customer = customer_or_404(request, params.customer_id)
    code = referral_code_create(customer=customer, program=program, actor=request.api_key)
    return {"code": code.code, "customer_id": customer.customer_id, "created_at": ms(code.created_at)}


@router.post(
    "/referrals.redeem_code",
    response={200: ReferralRedemptionOut, **ERRORS},
    operation_id="redeemReferralCode",
    summary="Redeem a referral code",
)
def referrals_redeem_code(request, params: RedeemReferralCodeParams):
    """A customer redeems another's code; the program's reward is given now or at the customer's checkout."""
    customer = customer_or_404(request, params.customer_id)
    redemption = referral_code_redeem(customer=customer, code=params.code, actor=request.api_key)
    return {
        "id": f"rr_{redemption.pk}",
        "customer_id": customer.customer_id,
        "reward_id": redemption.program.reward.reward_id,
    }
