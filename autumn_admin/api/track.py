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
import re

from django.http import HttpRequest, HttpResponse
from pydantic import ValidationError

from autumn_admin.api.auth import ENV_OF_PREFIX, KEY_PATTERN, bearer_token
from autumn_admin.api.errors import ApiError
from autumn_admin.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from autumn_admin.api.main import parse_json_body
from autumn_admin.api.one_round_trip import answered_in_one_round_trip
from autumn_admin.api.schemas.balances import TrackParams, quantity_or_one
from autumn_admin.api.serializers.balances import track_json
from billing.services.track import balance_track_by_key
from customers.services.api_keys import api_key_hash

PATH = "balances.track"


def _plain_track(request: HttpRequest) -> tuple[re.Match, TrackParams] | None:
    """The key and body of a track by feature_id alone, well formed and without an Idempotency-Key;
    None for any other request (the operation answers it)."""
    if IDEMPOTENCY_HEADER in request.headers:
        return None
    key = KEY_PATTERN.match(bearer_token(request))
    if key is None:
        return None
    try:
        params = TrackParams.model_validate(parse_json_body(request))  # the operation's own rules
    except (ApiError, ValidationError):
        return None
    if params.event_name is not None or params.timestamp is not None or not params.feature_id:
        return None
    return key, params


def _in_one_round_trip(request: HttpRequest) -> HttpResponse | None:
    plain = _plain_track(request)
    if plain is None:
        return None
    key, params = plain
    quantity = quantity_or_one(params.value)
    request.api_key_env = ENV_OF_PREFIX[key.group(1)]  # for an error answered before the key is checked
    tracked = balance_track_by_key(
        key_hash=api_key_hash(key.group(0)),
        env=request.api_key_env,
        customer_id=params.customer_id,
        feature_id=params.feature_id,
        value=quantity,
        properties=params.properties,
    )
    if tracked is None:
        del request.api_key_env  # the operation checks the key and answers
        return None
    balances = tracked.result.balances
    answer = track_json(
        customer=tracked.customer,
        feature=tracked.feature,
        value=quantity,
        balances=balances,
        prices={balances[0].pk: tracked.usage_price},
    )
    return HttpResponse(json.dumps(answer), content_type="application/json")


balances_track = answered_in_one_round_trip(PATH, _in_one_round_trip)
