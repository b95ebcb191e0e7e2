"""Balances: check, track, grants outside any plan (create, delete), the list, and the dashboard's edit rule
for update."""

from __future__ import annotations

from django.utils import timezone
from ninja import Router
from ninja.errors import ValidationError
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, entity_or_404_of, feature_or_404, of_customers, page_of
from autumn_admin.api.schemas.balances import (
    BATCH_TRACK_MAX,
    BalanceListOut,
    BatchTrackItem,
    CheckOut,
    CheckParams,
    CreateBalanceParams,
    DeleteBalanceParams,
    ListBalancesParams,
    TrackOut,
    TrackParams,
    UpdateBalanceParams,
    quantity_or_one,
)
from autumn_admin.api.schemas.common import ERRORS, SuccessOut
from autumn_admin.api.units import from_ms
from billing.models import Balance, Feature, Interval
from billing.selectors import PREFER_GRANT, balance_to_edit
from billing.services.balances import (
    UNSET,
    balance_add,
    balance_check,
    balance_check_and_track,
    balance_create,
    balance_delete,
    balance_set,
)
from billing.services.current import customer_bring_current
from billing.services.track import balance_batch_track, balance_track, feature_for_track, features_for_event
from billing.shapes.balances import balance_row_json, check_json, track_json
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
    covers required_balance (default 1). A boolean feature is allowed when granted. A metered feature
    that credit systems list is also allowed when one of their pools covers required_balance × its
    credit cost: then `balance` is the pool's and `required_balance` is in credits. With send_event,
    an allowed check also tracks required_balance (its own balance first, then the pool)."""
    customer = customer_or_404(request, params.customer_id)
    entity = entity_or_404_of(customer, params.entity_id)
    feature = feature_or_404(params.feature_id)
    required = quantity_or_one(params.required_balance)
    if params.send_event:
        result = balance_check_and_track(
            customer=customer,
            feature=feature,
            required_balance=required,
            actor=request.api_key,
            properties=params.properties,
            entity=entity,
        ).check
    else:
        result = balance_check(customer=customer, feature=feature, required_balance=required, entity=entity)
    return check_json(customer=customer, feature=feature, required=required, result=result, entity_id=params.entity_id)


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
    entity = entity_or_404_of(customer, params.entity_id)
    if params.feature_id:
        features = [feature_for_track(feature_id=params.feature_id)]
    else:
        features = features_for_event(params.event_name)
    value = quantity_or_one(params.value)
    result = balance_track(
        entity=entity,
        customer=customer,
        features=features,
        value=value,
        actor=request.api_key,
        event_name=params.event_name or "",
        properties=params.properties,
        timestamp=from_ms(params.timestamp) if params.timestamp is not None else None,
    )
    answer = track_json(
        customer=customer,
        feature=features[0],
        value=value,
        balances=list(result.balances),
        event_name=params.event_name,
        reached=result.reached,
        entity_id=params.entity_id,
    )
    if len(features) > 1:
        answer["balance"] = None  # Autumn's answer when an event name reached several features: see `balances`
    return answer


@router.post(
    "/balances.batch_track",
    response={200: SuccessOut, **ERRORS},
    operation_id="batchTrack",
    summary="Record many usage events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "maxItems": BATCH_TRACK_MAX}}},
        }
    },
)
def balances_batch_track(request):
    """Up to 1000 tracks (each with balances.track's fields, and its own idempotency_key) in one request.
    Every item is validated, and its customer and feature found, before any is recorded; then all are
    recorded in one transaction, each by the same engine as balances.track."""
    items = batch_track_items(request.api_json)  # the body as the API read it (main.parse_json_body)
    tracks = []
    for item in items:  # every lookup before any write: a 404 records nothing
        if not item.feature_id and not item.event_name:
            raise ApiError(422, "Give feature_id or event_name: which feature is used?", "invalid_inputs")
        customer = customer_or_404(request, item.customer_id)
        entity = entity_or_404_of(customer, item.entity_id)
        if item.feature_id:
            features = [feature_for_track(feature_id=item.feature_id)]
        else:
            features = features_for_event(item.event_name)
        tracks.append((item, customer, entity, features))
    balance_batch_track(
        tracks=[
            {
                "customer": customer,
                "features": features,
                "value": quantity_or_one(item.value),
                "event_name": item.event_name or "",
                "properties": item.properties,
                "timestamp": from_ms(item.timestamp) if item.timestamp is not None else None,
                "idempotency_key": item.idempotency_key,
                "entity": entity,
            }
            for item, customer, entity, features in tracks
        ],
        actor=request.api_key,
    )
    return {"success": True}


def batch_track_items(data) -> list[BatchTrackItem]:
    """The items of a batch_track body, validated by the item schema (422s as ninja words them)."""
    if not isinstance(data, list):
        raise ApiError(400, f"The body must be a JSON array of tracks, not {type(data).__name__}.", "invalid_request")
    if not data or len(data) > BATCH_TRACK_MAX:
        raise ApiError(422, f"Send 1 to {BATCH_TRACK_MAX} tracks (got {len(data)}).", "invalid_inputs")
    try:
        return _BATCH.validate_python(data)
    except PydanticValidationError as exc:
        raise ValidationError([{**e, "loc": ("body", "params", *e["loc"])} for e in exc.errors()])


_BATCH = TypeAdapter(list[BatchTrackItem])


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


def _the_balance(
    customer: Customer, feature: Feature | None, params: UpdateBalanceParams | DeleteBalanceParams, *, grants=False
) -> Balance:
    """The one balance (of the feature, if given) that balance_id and interval name (billing's rule for every
    edit): a 404 when none, a 409 when several. `grants`: among several, the grants outside any plan are meant
    (only they can be deleted)."""
    return balance_to_edit(
        customer,
        feature,
        balance_id=params.balance_id,
        interval=_interval(params.interval) if params.interval is not None else None,
        prefer=PREFER_GRANT if grants else None,
    )


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
    """A grant of `included_grant` (or unlimited) outside any plan, drawn down by track beside the plan's
    balance: one-off unless `reset` says how often (first at `next_reset_at`, default one interval from now),
    until `expires_at` if given. `balance_id` names it for balances.update and balances.delete."""
    if params.unlimited and params.included_grant:
        raise ApiError(422, "An unlimited balance has no included_grant: send one or the other.", "invalid_inputs")
    customer = customer_or_404(request, params.customer_id)
    feature = feature_or_404(params.feature_id)
    reset = params.reset
    balance_create(
        customer=customer,
        feature=feature,
        actor=request.api_key,
        granted=params.included_grant if params.included_grant is not None else 0,
        unlimited=params.unlimited,
        interval=_interval(reset.interval) if reset else Interval.LIFETIME,
        interval_count=reset.interval_count if reset else 1,
        next_reset_at=from_ms(params.next_reset_at) if params.next_reset_at is not None else None,
        expires_at=from_ms(params.expires_at) if params.expires_at is not None else None,
        api_id=params.balance_id or "",
        reason="Granted through the API",
    )
    return {"success": True}


@router.post(
    "/balances.delete",
    response={200: SuccessOut, **ERRORS},
    operation_id="deleteBalance",
    summary="Delete a grant made outside any plan",
)
def balances_delete(request, params: DeleteBalanceParams):
    """Delete the grant that feature_id, balance_id and interval name. Its recorded usage stays in the events;
    a plan's balance can't be deleted (customize the plan instead)."""
    if params.feature_id is None and params.balance_id is None:
        raise ApiError(422, "Send feature_id or balance_id: which balance?", "invalid_inputs")
    customer = customer_or_404(request, params.customer_id)
    feature = feature_or_404(params.feature_id) if params.feature_id is not None else None
    balance = _the_balance(customer, feature, params, grants=True)
    balance_delete(balance=balance, actor=request.api_key, reason="Deleted through the API")
    return {"success": True}


@router.post(
    "/balances.list",
    response={200: BalanceListOut, **ERRORS},
    operation_id="listBalances",
    summary="List balances",
)
def balances_list(request, params: ListBalancesParams):
    """Balances of one customer (customer_id) or of every customer of the environment, newest first: active
    ones unless `statuses` says otherwise (a grant is expired once past its expires_at). `plan_id` keeps one
    plan's; `plan_id: null` only the grants outside any plan."""
    now = timezone.now()
    if params.customer_id is not None:
        customer_bring_current(customer=customer_or_404(request, params.customer_id), now=now)
    statuses = set(params.statuses or ["active"])
    balances = of_customers(request, Balance.all_objects.all(), params.customer_id)
    if statuses == {"active"}:
        balances = balances.exclude(expires_at__lte=now)
    elif statuses == {"expired"}:
        balances = balances.filter(expires_at__lte=now)
    if params.feature_id is not None:
        balances = balances.filter(feature=feature_or_404(params.feature_id))
    if "plan_id" in params.model_fields_set:
        if params.plan_id is None:
            balances = balances.filter(customer_product__isnull=True)
        else:
            balances = balances.filter(customer_product__product__product_id=params.plan_id)
    balances = balances.select_related("customer", "feature", "customer_product__product").prefetch_related(
        "customer_product__product__prices"
    )
    page = page_of(balances, time_field="created_at", cursor=params.start_cursor, limit=params.limit)
    return {
        "list": [balance_row_json(b, now=now) for b in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }
