"""Credit systems through Autumn's real Python client, and the one-round-trip track beside the general
operation: a metered feature draws its own balance first, then the pool at its cost; check says which
balance answered; an event name reaches every feature that counts it; decimals stay exact."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest
from autumn_sdk import Autumn
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Balance, DailyUsage, Event
from tests.api.test_track_one_round_trip import TRACK_QUERIES
from tests.conftest import on_the_ai_plan

D = Decimal
_KEYS = itertools.count()


def stored(customer_id: str, feature_id: str) -> Decimal:
    return Balance.objects.get(customer__customer_id=customer_id, feature__feature_id=feature_id).remaining


@pytest.fixture
def autumn(live_server, transactional_db, credits_catalogue, sandbox_key, ops):
    """The real Python client, failing closed, for Acme Corp on the AI plan (10 messages, 100 credits)."""
    on_the_ai_plan("acme_corp", credits_catalogue, ops)
    with Autumn(secret_key=sandbox_key[1], server_url=live_server.url, fail_open=False) as client:
        yield client


@pytest.mark.django_db(transaction=True)
def test_the_client_sees_its_own_balance_drawn_first_then_the_pool_at_its_cost(autumn):
    first = autumn.track(customer_id="acme_corp", feature_id="messages", value=8)
    assert (first.balance.feature_id, first.balance.remaining, first.balances) == ("messages", 2, None)

    fell_through = autumn.track(customer_id="acme_corp", feature_id="messages", value=7)  # 2 own, then 5 × 0.2
    assert (fell_through.balance.remaining, fell_through.balance.usage) == (0, 10)
    assert fell_through.balances["ai_credits"].remaining == 99
    assert fell_through.balances["ai_credits"].usage == 1

    images = autumn.track(customer_id="acme_corp", feature_id="images", value=10)  # no own balance: 10 × 0.6
    assert images.balance is None and images.balances["ai_credits"].remaining == 93
    assert (stored("acme_corp", "messages"), stored("acme_corp", "ai_credits")) == (0, 93)


@pytest.mark.django_db(transaction=True)
def test_check_is_allowed_by_the_pool_at_its_cost_and_names_the_balance_that_answered(autumn):
    own = autumn.check(customer_id="acme_corp", feature_id="messages", required_balance=10)
    assert (own.allowed, own.balance.feature_id, own.required_balance) == (True, "messages", 10)
    assert set(own.balances) == {"messages", "ai_credits"}

    pooled = autumn.check(customer_id="acme_corp", feature_id="messages", required_balance=500)
    assert (pooled.allowed, pooled.balance.feature_id, pooled.balance.remaining) == (True, "ai_credits", 100)
    assert pooled.required_balance == 100  # in credits: 500 × 0.2

    too_much = autumn.check(customer_id="acme_corp", feature_id="images", required_balance=167)
    assert (too_much.allowed, too_much.balance.feature_id, too_much.required_balance) == (False, "ai_credits", 100.2)

    sent = autumn.check(customer_id="acme_corp", feature_id="images", required_balance=5, send_event=True)
    assert (sent.allowed, sent.balance.feature_id, sent.balance.remaining) == (True, "ai_credits", 97)
    assert stored("acme_corp", "ai_credits") == 97


@pytest.mark.django_db(transaction=True)
def test_an_event_name_deducts_every_feature_that_counts_it(autumn):
    tracked = autumn.track(customer_id="acme_corp", event_name="generation", value=12)
    # images: 12 × 0.6 = 7.2 credits; messages: 10 of their own, then 2 × 0.2 = 0.4 credits
    assert tracked.balance is None and tracked.event_name == "generation"
    assert {k: b and (b.remaining, b.usage) for k, b in tracked.balances.items()} == {
        "images": None,  # no balance of its own
        "messages": (0, 10),
        "ai_credits": (92.4, 7.6),
    }
    assert (stored("acme_corp", "messages"), stored("acme_corp", "ai_credits")) == (0, D("92.4"))
    values = Event.objects.filter(customer__customer_id="acme_corp").values_list("feature__feature_id", "value")
    assert sorted(values) == [("ai_credits", D("0.4")), ("ai_credits", D("7.2")), ("images", 12), ("messages", 12)]


@pytest.mark.django_db(transaction=True)
def test_decimals_stay_exact_and_a_pool_without_overage_stops_at_zero(autumn):
    left = autumn.track(customer_id="acme_corp", feature_id="ai_credits", value=23.47)
    assert left.balance.remaining == 76.53
    assert stored("acme_corp", "ai_credits") == D("76.53")
    autumn.track(customer_id="acme_corp", feature_id="messages", value=10)
    autumn.track(customer_id="acme_corp", feature_id="images", value=127.55)  # 76.53 credits exactly
    assert stored("acme_corp", "ai_credits") == 0
    capped = autumn.track(customer_id="acme_corp", feature_id="images", value=50)
    assert (capped.balances["ai_credits"].remaining, capped.balances["ai_credits"].usage) == (0, 100)
    refused = autumn.check(customer_id="acme_corp", feature_id="images")
    assert (refused.allowed, refused.balance.feature_id) == (False, "ai_credits")
    pool_usage = DailyUsage.objects.get(customer__customer_id="acme_corp", feature__feature_id="ai_credits")
    assert pool_usage.value == 100  # the pool's graph counts what it gave, in credits


# --- a track with and without an Idempotency-Key: one engine, one answer ---------------------------------


def _track(api, body, *, general: bool):
    headers = {"Idempotency-Key": f"general-{next(_KEYS)}"} if general else None  # a key takes the general way
    with CaptureQueriesContext(connection) as ctx:
        response = api.post("balances.track", body, headers=headers)
    assert response.status_code == 200, response.content
    return response.json(), len(ctx.captured_queries)


def test_a_track_of_credits_answers_the_same_with_or_without_an_idempotency_key(api, credits_catalogue, ops):
    now = timezone.now()
    twins = [on_the_ai_plan(cid, credits_catalogue, ops, now=now) for cid in ("twin_a", "twin_b")]
    steps = [
        ("messages", 3, 1),  # the own balance covers it: one statement
        ("messages", D("6.5"), 1),
        ("messages", 4, None),  # 0.5 own, then 3.5 × 0.2 from the pool: the general path
        ("images", D("0.35"), None),
        ("ai_credits", D("23.47"), 1),  # the pool itself is a plain balance
        ("messages", -2, None),
        ("messages", 300, None),
    ]
    for feature_id, value, _ in steps:
        body = {"feature_id": feature_id, "value": float(value)}
        fast, queries = _track(api, {"customer_id": "twin_a", **body}, general=False)
        general, _ = _track(api, {"customer_id": "twin_b", **body}, general=True)
        assert queries == TRACK_QUERIES, (feature_id, value)  # the one engine, however it draws
        general["customer_id"] = "twin_a"
        for answer in (fast, general):  # each twin's balances have their own ids
            for balance in [answer["balance"], *(answer.get("balances") or {}).values()]:
                for b in (balance or {}).get("breakdown", []):
                    b["id"] = "bal"
        assert fast == general, json.dumps([fast, general])
        for feature in ("messages", "ai_credits"):
            assert stored("twin_a", feature) == stored("twin_b", feature), (feature_id, value, feature)
    for twin in twins:
        pool = Balance.objects.get(customer=twin, feature__feature_id="ai_credits")
        # 3.5 × 0.2 = 0.7, 0.35 × 0.6 = 0.21, 23.47 on the pool itself; the refund of 2 goes to the messages'
        # own balance, so of the 300 that follow 2 are their own and 298 × 0.2 = 59.6 credits
        assert pool.remaining == D(100) - D("0.7") - D("0.21") - D("23.47") - D("59.6")
    assert sorted(Event.objects.filter(customer=twins[0]).values_list("feature__feature_id", "value")) == sorted(
        Event.objects.filter(customer=twins[1]).values_list("feature__feature_id", "value")
    )
