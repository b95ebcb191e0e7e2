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

from django.http import HttpRequest, HttpResponse

from autumn_admin.api.one_round_trip import answered_in_one_round_trip, keyed_request
from autumn_admin.api.schemas.balances import TrackParams, quantity_or_one
from autumn_admin.api.serializers.balances import track_json
from billing.services.track import balance_track_by_key

PATH = "balances.track"


def _in_one_round_trip(request: HttpRequest) -> HttpResponse | None:
    keyed = keyed_request(request, TrackParams)
    if keyed is None:
        return None
    params = keyed.params
    if params.event_name is not None or params.timestamp is not None or not params.feature_id:
        return None  # a track by event name or at another moment: the operation's
    quantity = quantity_or_one(params.value)
    request.api_key_env = keyed.env  # for an error answered before the key is checked
    tracked = balance_track_by_key(
        key_hash=keyed.key_hash,
        env=keyed.env,
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
