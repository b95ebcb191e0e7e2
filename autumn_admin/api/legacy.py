"""The 1.2 forms that older autumn-js versions and deployed apps still send: /v1/check, /v1/track,
/v1/usage and /v1/entitled. Each runs the same service as its 2.x twin and answers in the 1.2 shape."""

from __future__ import annotations

from decimal import Decimal

from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, entity_or_404_of, feature_or_404
from autumn_admin.api.schemas.balances import CheckParams, quantity_or_one
from autumn_admin.api.schemas.common import ERRORS, SuccessOut
from autumn_admin.api.schemas.legacy import (
    LegacyCheckOut,
    LegacyEntitledOut,
    LegacyEntitledParams,
    LegacyTrackOut,
    LegacyTrackParams,
    LegacyUsageParams,
)
from autumn_admin.api.serializers.legacy import entitled_json, legacy_check_answer
from autumn_admin.api.units import from_ms
from billing.models import Entity, Feature, FeatureType
from billing.selectors import balance_to_edit
from billing.services.balances import (
    CheckResult,
    balance_check,
    balance_check_and_track,
)
from billing.services.current import customer_bring_current
from billing.services.track import balance_track, balance_usage_set, feature_for_track, features_for_event
from customers.models import Customer

router = Router(tags=["API 1.2"])


def _check_and_track(
    request,
    *,
    customer: Customer,
    feature: Feature,
    required: Decimal,
    track: bool,
    properties: dict | None,
    entity: Entity | None = None,
) -> CheckResult:
    """balances.check's rule; when `track` and allowed, `required` is tracked too (never for a flag). The
    balance answered with is the one that answered: a credit system's when its pool covered the use."""
    if not track:
        return balance_check(customer=customer, feature=feature, required_balance=required, entity=entity)
    done = balance_check_and_track(
        customer=customer,
        feature=feature,
        required_balance=required,
        actor=request.api_key,
        properties=properties,
        entity=entity,
    )
    result = done.check
    if result.allowed and done.track is not None:
        answered = result.answered_by or feature
        result = CheckResult(
            allowed=True, balance=done.answered(feature), answered_by=answered, required=result.required
        )
    return result


@router.post(
    "/check",
    response={200: LegacyCheckOut, **ERRORS},
    operation_id="checkLegacy",
    summary="May the customer use a feature? (API 1.2)",
)
def check(request, params: CheckParams):
    """balances.check, answered with the 1.2 keys (balance, usage, included_usage, interval…)."""
    customer = customer_or_404(request, params.customer_id)
    entity = entity_or_404_of(customer, params.entity_id)
    feature = feature_or_404(params.feature_id)
    required = quantity_or_one(params.required_balance)
    result = _check_and_track(
        request,
        entity=entity,
        customer=customer,
        feature=feature,
        required=required,
        track=params.send_event,
        properties=params.properties,
    )
    return legacy_check_answer(customer=customer, feature=feature, result=result, required=required)


@router.post(
    "/track",
    response={200: LegacyTrackOut, **ERRORS},
    operation_id="trackLegacy",
    exclude_unset=True,
    summary="Record usage (API 1.2)",
)
def track(request, params: LegacyTrackParams):
    """balances.track. `idempotency_key` records a repeated track once; overage_behavior "reject" tracks
    nothing (409) when the balance doesn't cover the value."""
    if not params.feature_id and not params.event_name:
        raise ApiError(422, "Give feature_id or event_name: which feature is used?", "invalid_inputs")
    customer = customer_or_404(request, params.customer_id)
    entity = entity_or_404_of(customer, params.entity_id)
    if params.feature_id:
        features = [feature_for_track(feature_id=params.feature_id)]
    else:
        features = features_for_event(params.event_name)  # every feature that counts it
    value = quantity_or_one(params.value)
    balance_track(
        entity=entity,
        customer=customer,
        features=features,
        value=value,
        actor=request.api_key,
        event_name=params.event_name or "",
        properties=params.properties,
        timestamp=from_ms(params.timestamp) if params.timestamp is not None else None,
        idempotency_key=params.idempotency_key,
        reject_uncovered=params.overage_behavior == "reject",  # decided under the track's own locks
    )
    answer = {"customer_id": customer.customer_id}
    if params.feature_id:
        answer["feature_id"] = features[0].feature_id
    if params.event_name:
        answer["event_name"] = params.event_name
    return answer


@router.post(
    "/usage",
    response={200: SuccessOut, **ERRORS},
    operation_id="setUsageLegacy",
    summary="Set usage to a value (API 1.2)",
)
def usage(request, params: LegacyUsageParams):
    """Set what the feature's usage reads: the difference from the usage now is tracked as an event
    (negative when usage goes down), so usage, remaining, the events and the graphs all agree."""
    customer = customer_or_404(request, params.customer_id)
    feature = feature_or_404(params.feature_id)
    if feature.type == FeatureType.BOOLEAN:
        raise ApiError(422, f"{feature.feature_id} is an on/off feature: it has no usage.", "invalid_inputs")
    customer_bring_current(customer=customer)  # due resets first, so the usage is set in the current period
    balance_usage_set(
        customer=customer,
        feature=feature,
        balance=balance_to_edit(customer, feature),
        usage=params.value,
        actor=request.api_key,
    )
    return {"success": True}


@router.post(
    "/entitled",
    response={200: LegacyEntitledOut, **ERRORS},
    operation_id="entitledLegacy",
    summary="May the customer use a feature? (the oldest form)",
)
def entitled(request, params: LegacyEntitledParams):
    """balances.check with required_quantity (default 1); with event_data, an allowed check also tracks it."""
    customer = customer_or_404(request, params.customer_id)
    feature = feature_or_404(params.feature_id)
    required = quantity_or_one(params.required_quantity)
    result = _check_and_track(
        request,
        customer=customer,
        feature=feature,
        required=required,
        track=params.event_data is not None,
        properties=params.event_data,
    )
    return entitled_json(
        feature=result.answered_by or feature,
        allowed=result.allowed,
        required=result.required if result.required is not None else required,
        fb=result.balance,
    )
