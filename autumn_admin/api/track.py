"""POST /v1/balances.track, the API's hottest call, in one round trip to the database when it can be.

Most tracks are the same request: a key, a customer id, a feature id, a value, perhaps properties, for
a customer with one balance of the feature. For those, `balance_track_by_key` finds the key, the
customer and the feature inside the track statement itself, and this view answers from its row, without
the ORM lookups and ninja's validation around them. Anything else goes to the ninja operation
(`balances.balances_track`), which authenticates, validates, answers errors and calls the same
service: an Idempotency-Key, an event name or a timestamp, a body ninja would refuse, a key, customer or
feature that is not found, a boolean feature, a due reset, several balances, or a database other than
PostgreSQL. The OpenAPI document describes that operation; both give the same answer
(tests/api/test_track_one_round_trip.py).
"""

from __future__ import annotations

import json
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from autumn_admin.api.auth import ENV_OF_PREFIX, KEY_PATTERN
from autumn_admin.api.errors import ApiError
from autumn_admin.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from autumn_admin.api.main import api, parse_json_body
from autumn_admin.api.schemas import JSON_OBJECT_MAX_CHARS
from autumn_admin.api.serializers import balance_json
from autumn_admin.errors import ServiceError
from billing.quantities import parse_quantity, to_number
from billing.services import FeatureBalance, balance_track_by_key
from customers.services import api_key_hash, validate_customer_id

PATH = "balances.track"


@csrf_exempt
def balances_track(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        answer = _in_one_round_trip(request)
        if answer is not None:
            return answer
    return _operation()(request)


@cache
def _operation():
    """The ninja operation served at the same path (after this view in the URLconf)."""
    for pattern in api.urls[0]:
        if hasattr(pattern, "resolve") and pattern.resolve(PATH) is not None:
            return pattern.callback
    raise LookupError(f"The API has no {PATH} operation.")


def _in_one_round_trip(request: HttpRequest) -> HttpResponse | None:
    if IDEMPOTENCY_HEADER in request.headers:
        return None
    scheme, _, raw_key = request.headers.get("Authorization", "").partition(" ")
    key = KEY_PATTERN.match(raw_key.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        return None
    try:
        data = parse_json_body(request)
    except ApiError:
        return None
    if data.get("event_name") is not None or data.get("timestamp") is not None:
        return None
    customer_id, feature_id = data.get("customer_id"), data.get("feature_id")
    value, properties = data.get("value"), data.get("properties")
    if not isinstance(feature_id, str) or not 1 <= len(feature_id) <= 255:
        return None
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return None
    if properties is not None and (not isinstance(properties, dict)
                                   or len(json.dumps(properties, default=str)) > JSON_OBJECT_MAX_CHARS):
        return None
    try:
        customer_id = validate_customer_id(customer_id)
        quantity = parse_quantity(1 if value is None else value, field="value")
    except ServiceError:
        return None
    tracked = balance_track_by_key(key_hash=api_key_hash(key.group(0)), env=ENV_OF_PREFIX[key.group(1)],
                                   customer_id=customer_id, feature_id=feature_id, value=quantity,
                                   properties=properties)
    if tracked is None:
        return None
    balances = tracked.result.balances
    answer = {
        "customer_id": tracked.customer.customer_id,
        "value": to_number(quantity),
        "balance": balance_json(FeatureBalance.of(tracked.feature, balances),
                                prices={balances[0].pk: tracked.usage_price}),
    }
    return HttpResponse(json.dumps(answer), content_type="application/json")
