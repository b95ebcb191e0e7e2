"""A refund never gives back more than was used, and its event records only what it gave back, so a
balance's events always add up to its usage: on the one-statement tracks (by key and by balance) and on
the general path, for a feature of its own and one drawn from a credit pool at its cost."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.models import Balance, CreditCost, Event
from billing.services.balances import balance_create
from tests.conftest import on_the_ai_plan

D = Decimal
_KEYS = itertools.count()


def _usage(customer_id: str, feature_id: str) -> Decimal:
    balances = Balance.objects.filter(customer__customer_id=customer_id, feature__feature_id=feature_id)
    return sum((b.usage for b in balances), D(0))


def _events(customer_id: str, feature_id: str, **filters) -> Decimal:
    events = Event.objects.filter(customer__customer_id=customer_id, feature__feature_id=feature_id, **filters)
    return events.aggregate(total=Sum("value"))["total"] or D(0)


def _aggregated(api, customer_id: str, feature_ids: list[str]) -> dict[str, Decimal]:
    answer = api.post("events.aggregate", {"customer_id": customer_id, "feature_id": feature_ids, "range": "24h"})
    assert answer.status_code == 200, answer.content
    return {f: D(str(total["sum"])) for f, total in answer.json()["total"].items()}


def test_a_refund_larger_than_the_usage_records_only_what_it_gave_back(api, customer, catalogue):
    used = api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 3})
    assert used.status_code == 200
    refund = api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": -50})
    assert refund.status_code == 200
    assert refund.json()["balance"]["usage"] == 0
    assert sorted(Event.objects.filter(customer=customer).values_list("value", flat=True)) == [D(-3), D(3)]
    assert _aggregated(api, "acme_corp", ["messages"]) == {"messages": D(0)}


def _track(api, rng: random.Random, body: dict):
    """The same track by one of the three ways: the one statement by key (balances.track), by balance (the
    operation, reached with an Idempotency-Key), or the general path (the 1.2 /track with its own key)."""
    way = rng.choice(["by key", "by balance", "general"])
    if way == "by key":
        return api.post("balances.track", body)
    if way == "by balance":
        return api.post("balances.track", body, headers={"Idempotency-Key": f"mix-{next(_KEYS)}"})
    return api.post("track", {**body, "idempotency_key": f"mix-{next(_KEYS)}"})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_a_random_mix_of_tracks_and_refunds_every_balance_agrees_with_its_events(
    api, credits_catalogue, ops, seed
):
    """messages: 10 of its own (no overage), then the AI credits at 0.2; images: the AI credits alone at 0.6;
    api_calls: a grant of its own; seats: a grant with overage. The pool allows overage, so a use is never
    cut off and every unit tracked lands on some balance."""
    customer = on_the_ai_plan("acme_corp", credits_catalogue, ops)
    Balance.objects.filter(customer=customer, feature=credits_catalogue["ai_credits"]).update(overage_allowed=True)
    balance_create(customer=customer, feature=credits_catalogue["api_calls"], actor=ops, reason="mix", granted=10**6)
    balance_create(
        customer=customer, feature=credits_catalogue["seats"], actor=ops, reason="mix", granted=5, overage_allowed=True
    )
    rng = random.Random(seed)
    features = ["messages", "images", "api_calls", "seats", "ai_credits"]
    for _ in range(60):
        feature = rng.choice(features)
        used = _usage("acme_corp", feature) if feature != "images" else D(5)
        if rng.random() < 0.45:  # a refund, often of more than was used
            value = -D(rng.randint(1, int(max(used, D(1)) * 2) + 2))
        else:
            value = D(rng.randint(0, 16)) + rng.choice([D(0), D("0.5")])
        answer = _track(api, rng, {"customer_id": "acme_corp", "feature_id": feature, "value": float(value)})
        assert answer.status_code == 200, answer.content

    costs = {c.metered_feature.feature_id: c.credit_cost for c in CreditCost.objects.select_related("metered_feature")}
    pool_events = Event.objects.filter(customer=customer, feature__feature_id="ai_credits")
    for feature in features:
        own = _usage("acme_corp", feature)
        if feature in costs:
            # A use past the feature's own balance is paid for by the pool: its credits are events of the pool
            # drawn for the feature's event.
            drawn = pool_events.filter(drawn_for__feature__feature_id=feature).aggregate(t=Sum("value"))["t"] or D(0)
            assert abs(own + drawn / costs[feature] - _events("acme_corp", feature)) <= D("0.000001") * 60, feature
        else:
            assert own == _events("acme_corp", feature), feature
    assert _aggregated(api, "acme_corp", features) == {f: _events("acme_corp", f) for f in features}
    assert all(b.usage >= 0 or b.overage_allowed for b in Balance.objects.filter(customer=customer))
