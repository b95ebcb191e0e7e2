"""Balances: check, track, a grant outside any plan (create), and the dashboard's edit rule for update."""

from __future__ import annotations

from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, feature_or_404
from autumn_admin.api.schemas.balances import (
    CheckOut,
    CheckParams,
    CreateBalanceParams,
    TrackOut,
    TrackParams,
    UpdateBalanceParams,
    quantity_or_one,
)
from autumn_admin.api.schemas.common import ERRORS, SuccessOut
from autumn_admin.api.serializers.balances import balance_id, balance_or_flag, track_json
from autumn_admin.api.units import from_ms
from billing.models import Balance, Feature, FeatureType, Interval
from billing.quantities import to_number
from billing.services.balances import UNSET, balance_add, balance_check, balance_create, balance_set
from billing.services.track import balance_track, feature_for_track
from customers.models import Customer

router = Router(tags=["balances"])

API_REASON = "Changed through the API"


def _interval(api_interval: str) -> str:
    return Interval.LIFETIME if api_interval == "one_off" else api_interval


@router.post(
    "/balances.check",
    response={200: CheckOut, **ERRORS},
    operation_id="check",
    summary="May the customer use a feature?",
)
def balances_check(request, params: CheckParams):
    """Allowed when unlimited, when overage is allowed (below any usage limit), or when the balance
    covers required_balance (default 1). A boolean feature is allowed when granted. With send_event,
    an allowed check also tracks required_balance."""
    customer = customer_or_404(request, params.customer_id)
    feature = feature_or_404(params.feature_id)
    required = quantity_or_one(params.required_balance)
    result = balance_check(customer=customer, feature=feature, required_balance=required)
    balances = result.balance.balances if result.balance else []
    if result.allowed and params.send_event and feature.type != FeatureType.BOOLEAN:
        balances = balance_track(
            customer=customer, feature=feature, value=required, actor=request.api_key, properties=params.properties
        ).balances
    balance, flag = balance_or_flag(feature, balances)
    return {
        "allowed": result.allowed,
        "customer_id": customer.customer_id,
        "entity_id": None,
        "required_balance": to_number(required),
        "balance": balance,
        "flag": flag,
    }


@router.post(
    "/balances.track",
    response={200: TrackOut, **ERRORS},
    operation_id="track",
    exclude_unset=True,
    summary="Record usage",
)
def balances_track(request, params: TrackParams):
    """Deduct `value` (default 1) from the customer's balance of the feature, named by feature_id or by
    one of its event names, and record the event. Without overage the balance stops at 0; the event
    keeps the full value."""
    if not params.feature_id and not params.event_name:
        raise ApiError(422, "Give feature_id or event_name: which feature is used?", "invalid_inputs")
    customer = customer_or_404(request, params.customer_id)
    feature = feature_for_track(feature_id=params.feature_id, event_name=params.event_name)
    value = quantity_or_one(params.value)
    result = balance_track(
        customer=customer,
        feature=feature,
        value=value,
        actor=request.api_key,
        event_name=params.event_name or "",
        properties=params.properties,
        timestamp=from_ms(params.timestamp) if params.timestamp is not None else None,
    )
    return track_json(
        customer=customer, feature=feature, value=value, balances=list(result.balances), event_name=params.event_name
    )


def _refuse_what_update_cannot_do(params: UpdateBalanceParams) -> None:
    if params.usage is not None or params.included_grant is not None:
        raise ApiError(
            422,
            "usage and included_grant can't be set: recorded usage is never rewritten. Send the "
            "new balance as remaining, or a change as add_to_balance.",
            "invalid_inputs",
        )
    if params.remaining is not None and params.add_to_balance is not None:
        raise ApiError(422, "Send remaining or add_to_balance, not both.", "invalid_inputs")
    if params.remaining is None and params.add_to_balance is None and params.next_reset_at is None:
        raise ApiError(422, "Send remaining, add_to_balance or next_reset_at: nothing to change.", "invalid_inputs")


def _the_balance(customer: Customer, feature: Feature, params: UpdateBalanceParams) -> Balance:
    """The one balance of the feature that balance_id and interval name: a 404 when none, a 409 when several."""
    balances = list(Balance.objects.filter(customer=customer, feature=feature).order_by("id"))
    if params.balance_id is not None:
        balances = [b for b in balances if balance_id(b) == params.balance_id]
    if params.interval is not None:
        balances = [b for b in balances if b.interval == _interval(params.interval)]
    if not balances:
        raise ApiError(404, f"{customer.customer_id} has no such balance of {feature.feature_id}.", "balance_not_found")
    if len(balances) > 1:
        ids = ", ".join(balance_id(b) for b in balances)
        raise ApiError(
            409,
            f"{customer.customer_id} has {len(balances)} balances of {feature.feature_id} ({ids}): "
            "pass balance_id to say which.",
            "multiple_balances",
        )
    return balances[0]


@router.post(
    "/balances.update", response={200: SuccessOut, **ERRORS}, operation_id="updateBalance", summary="Edit a balance"
)
def balances_update(request, params: UpdateBalanceParams):
    """The dashboard's rule: `remaining` is the new balance (negative = usage to charge, where overage
    is allowed), `add_to_balance` a change to it. Recorded usage never changes; granted moves. The
    edit lasts until the next reset; `next_reset_at` moves that reset (future only)."""
    _refuse_what_update_cannot_do(params)
    customer = customer_or_404(request, params.customer_id)
    balance = _the_balance(customer, feature_or_404(params.feature_id), params)
    edit = {
        "balance": balance,
        "actor": request.api_key,
        "reason": (params.reason or "").strip() or API_REASON,
        "next_reset_at": from_ms(params.next_reset_at) if params.next_reset_at is not None else UNSET,
    }
    if params.remaining is not None:
        balance_set(new_balance=params.remaining, **edit)
    else:
        # Adding 0 changes only the reset date, under the same lock as any other edit.
        balance_add(delta=params.add_to_balance or 0, **edit)
    return {"success": True}


@router.post(
    "/balances.create",
    response={200: SuccessOut, **ERRORS},
    operation_id="createBalance",
    summary="Grant a feature outside any plan",
)
def balances_create(request, params: CreateBalanceParams):
    """A loose grant of `included_grant` (or unlimited), never resetting unless `reset` says how often."""
    customer = customer_or_404(request, params.customer_id)
    feature = feature_or_404(params.feature_id)
    if params.unlimited and params.included_grant:
        raise ApiError(422, "An unlimited balance has no included_grant: send one or the other.", "invalid_inputs")
    reset = params.reset
    balance_create(
        customer=customer,
        feature=feature,
        actor=request.api_key,
        granted=params.included_grant if params.included_grant is not None else 0,
        unlimited=params.unlimited,
        interval=_interval(reset.interval) if reset else Interval.LIFETIME,
        interval_count=reset.interval_count if reset else 1,
        reason="Granted through the API",
    )
    return {"success": True}
