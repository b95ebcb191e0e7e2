"""Referral programs as Autumn's API answers them (ApiReferralProgramV0)."""

from __future__ import annotations

from billing.models import ReferralProgram
from billing.shapes.units import ms


def referral_program_json(program: ReferralProgram) -> dict:
    return {
        "id": program.program_id,
        "reward_id": program.reward.reward_id,
        "redeem_on": program.redeem_on,
        "received_by": program.received_by,
        "max_redemptions": program.max_redemptions,
        "plan_ids": program.plan_ids or None,
        "exclude_trial": bool(program.exclude_trial),
        "created_at": ms(program.created_at),
    }
