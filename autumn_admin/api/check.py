"""POST /v1/balances.check in one round trip to the database when it can be.

Most checks are the same request: a key, a customer id, a feature id, perhaps required_balance, for a
customer with one balance of the feature. For those, `balance_check_by_key` (billing/services/check.py)
finds the key, the customer, the feature and the balance in one statement, and this view answers from
its row, without the ORM lookups and ninja's validation around them. Anything else goes to the ninja
operation (`balances.balances_check`), which authenticates, validates, answers errors and calls the
general service: an Idempotency-Key, send_event (a check that also tracks), a body ninja would refuse, a
key, customer or feature that is not found, a feature a credit system counts, no balance or several, a
due reset, or a database other than PostgreSQL. The OpenAPI document describes that operation; both give
the same answer (tests/api/test_check_one_round_trip.py).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse

from autumn_admin.api.one_round_trip import answered_in_one_round_trip, keyed_request
from autumn_admin.api.schemas.balances import CheckParams, quantity_or_one
from autumn_admin.api.serializers.balances import balance_json, flag_json
from billing.models import FeatureType
from billing.quantities import to_number
from billing.services.check import balance_check_by_key

PATH = "balances.check"


def _in_one_round_trip(request: HttpRequest) -> HttpResponse | None:
    keyed = keyed_request(request, CheckParams)
    if keyed is None or keyed.params.send_event:
        return None  # a check that also tracks: the operation's
    params = keyed.params
    required = quantity_or_one(params.required_balance)
    checked = balance_check_by_key(
        key_hash=keyed.key_hash,
        env=keyed.env,
        customer_id=params.customer_id,
        feature_id=params.feature_id,
        required_balance=required,
    )
    if checked is None:
        return None  # the operation checks the key and answers
    fb, feature = checked.result.balance, checked.feature
    balance, flag = None, None
    if feature.type == FeatureType.BOOLEAN:  # as balance_or_flag shows it
        flag = flag_json(feature, fb.balances)
    else:
        balance = balance_json(fb, prices={fb.balances[0].pk: checked.usage_price})
    answer = {
        "allowed": checked.result.allowed,
        "customer_id": checked.customer.customer_id,
        "entity_id": None,
        "required_balance": to_number(required),
        "balance": balance,
        "flag": flag,
        # Every metered balance the check looked at: here only the feature's own (no credit system counts it).
        "balances": {feature.feature_id: balance} if feature.is_metered else {},
    }
    return HttpResponse(json.dumps(answer), content_type="application/json; charset=utf-8")


balances_check = answered_in_one_round_trip(PATH, _in_one_round_trip)
