"""Credit systems: a metered feature draws first from its own balance, then from the credit pools that
list it, at their cost; check answers from the same pool; an event name reaches every feature that
counts it; quantities stay exact decimals."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from billing.models import Balance, CreditCost, DailyUsage, Event, Feature
from billing.services.balances import balance_check, balance_create
from billing.services.track import balance_track, features_for_event

D = Decimal


def remaining(customer, feature_id) -> list[Decimal]:
    return [
        b.remaining for b in Balance.objects.filter(customer=customer, feature__feature_id=feature_id).order_by("id")
    ]


def test_own_balance_is_drawn_first_then_the_pool_at_its_cost(ai_customer, credits_catalogue):
    messages, pool = credits_catalogue["messages"], credits_catalogue["ai_credits"]

    result = balance_track(customer=ai_customer, feature=messages, value=8, actor=None)
    assert (remaining(ai_customer, "messages"), remaining(ai_customer, "ai_credits")) == ([D(2)], [D(100)])
    assert not result.event.credit_draws.exists()

    result = balance_track(customer=ai_customer, feature=messages, value=7, actor=None)  # 2 own, 5 at 0.2
    assert (remaining(ai_customer, "messages"), remaining(ai_customer, "ai_credits")) == ([D(0)], [D(99)])
    draw = result.event.credit_draws.get()
    assert (draw.feature, draw.value, draw.customer) == (pool, D(1), ai_customer)
    assert result.event.value == D(7)
    assert [f.feature_id for f in result.reached] == ["messages", "ai_credits"]
    assert sorted((d.balance.feature.feature_id, d.value) for d in result.deductions) == [
        ("ai_credits", D(1)),
        ("messages", D(2)),
    ]

    balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=10, actor=None)
    assert remaining(ai_customer, "ai_credits") == [D(93)]  # images have no balance of their own: 10 × 0.6


def test_the_pools_usage_counts_credits_by_day(ai_customer, credits_catalogue):
    balance_track(customer=ai_customer, feature=credits_catalogue["messages"], value=15, actor=None)
    balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=5, actor=None)
    balance_track(customer=ai_customer, feature=credits_catalogue["ai_credits"], value=2, actor=None)
    usage = dict(
        DailyUsage.objects.filter(customer=ai_customer).values_list("feature__feature_id").annotate(s=Sum("value"))
    )
    assert usage == {"messages": D(15), "images": D(5), "ai_credits": D(1) + D(3) + D(2)}
    pool = Balance.objects.get(customer=ai_customer, feature=credits_catalogue["ai_credits"])
    assert pool.usage == D(6)


def test_decimals_stay_exact_through_the_pool(ai_customer, credits_catalogue):
    balance_track(customer=ai_customer, feature=credits_catalogue["ai_credits"], value=D("23.47"), actor=None)
    assert remaining(ai_customer, "ai_credits") == [D("76.53")]
    balance_track(customer=ai_customer, feature=credits_catalogue["messages"], value=D("10.000003"), actor=None)
    # 10 own messages, then 0.000003 × 0.2 = 0.0000006 credits: rounded up to the millionth a balance keeps
    assert remaining(ai_customer, "ai_credits") == [D("76.529999")]
    balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=D("0.35"), actor=None)
    assert remaining(ai_customer, "ai_credits") == [D("76.319999")]


def test_without_overage_the_pool_stops_at_zero_with_usage_what_was_there(ai_customer, credits_catalogue):
    pool = Balance.objects.get(customer=ai_customer, feature=credits_catalogue["ai_credits"])
    Balance.objects.filter(pk=pool.pk).update(remaining=D("1.5"), adjustment=D("-98.5"))  # 1.5 left of 1.5
    result = balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=4, actor=None)
    pool.refresh_from_db()
    assert (pool.remaining, pool.usage) == (D(0), D(0) + D("1.5") - D(0))
    assert result.event.value == D(4)  # the event keeps what was tracked
    assert result.event.credit_draws.get().value == D("1.5")  # the pool's event what it gave


def test_overage_goes_to_the_first_balance_that_allows_it(ai_customer, credits_catalogue):
    Balance.objects.filter(customer=ai_customer, feature=credits_catalogue["ai_credits"]).update(overage_allowed=True)
    balance_track(customer=ai_customer, feature=credits_catalogue["messages"], value=510, actor=None)
    assert remaining(ai_customer, "messages") == [D(0)]
    assert remaining(ai_customer, "ai_credits") == [D(0)]  # 500 × 0.2 = 100 credits: exactly the pool
    balance_track(customer=ai_customer, feature=credits_catalogue["messages"], value=5, actor=None)
    assert remaining(ai_customer, "ai_credits") == [D(-1)]


def test_a_refund_gives_back_to_the_own_balance_first_then_the_pool(ai_customer, credits_catalogue):
    messages = credits_catalogue["messages"]
    balance_track(customer=ai_customer, feature=messages, value=20, actor=None)  # 10 own, 10 × 0.2 = 2 credits
    result = balance_track(customer=ai_customer, feature=messages, value=-15, actor=None)
    assert (remaining(ai_customer, "messages"), remaining(ai_customer, "ai_credits")) == ([D(10)], [D(99)])
    assert result.event.credit_draws.get().value == D(-1)  # 5 × 0.2 given back
    balance_track(customer=ai_customer, feature=messages, value=-100, actor=None)  # never beyond what was used
    assert (remaining(ai_customer, "messages"), remaining(ai_customer, "ai_credits")) == ([D(10)], [D(100)])


def test_an_unlimited_own_balance_takes_everything_and_the_pool_is_untouched(ai_customer, credits_catalogue, ops):
    balance_create(
        customer=ai_customer, feature=credits_catalogue["images"], actor=ops, unlimited=True, reason="Launch week"
    )
    result = balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=50, actor=None)
    assert remaining(ai_customer, "ai_credits") == [D(100)]
    assert not result.event.credit_draws.exists()


def test_check_answers_from_the_own_balance_then_the_pool_at_cost(ai_customer, credits_catalogue):
    messages, pool = credits_catalogue["messages"], credits_catalogue["ai_credits"]
    own = balance_check(customer=ai_customer, feature=messages, required_balance=10)
    assert (own.allowed, own.answered_by, own.required, own.balance.remaining) == (True, messages, D(10), D(10))

    by_pool = balance_check(customer=ai_customer, feature=messages, required_balance=500)
    assert (by_pool.allowed, by_pool.answered_by, by_pool.required) == (True, pool, D(100))
    assert by_pool.balance.remaining == D(100)

    refused = balance_check(customer=ai_customer, feature=messages, required_balance=D("500.000001"))
    assert (refused.allowed, refused.answered_by, refused.required) == (False, pool, D("100.000001"))

    images = balance_check(customer=ai_customer, feature=credits_catalogue["images"], required_balance=100)
    assert (images.allowed, images.answered_by, images.required) == (True, pool, D(60))
    assert set(images.balances) == {pool}


def test_check_without_any_balance_is_refused(customer, credits_catalogue):
    result = balance_check(customer=customer, feature=credits_catalogue["images"])
    assert (result.allowed, result.balance) == (False, None)


def test_an_event_name_reaches_every_feature_that_counts_it(ai_customer, credits_catalogue):
    assert [f.feature_id for f in features_for_event("generation")] == ["images", "messages"]
    result = balance_track(
        customer=ai_customer,
        features=features_for_event("generation"),
        value=12,
        actor=None,
        event_name="generation",
        idempotency_key="gen-1",
    )
    # images: 12 × 0.6 = 7.2 credits; messages: 10 own, then 2 × 0.2 = 0.4 credits
    assert remaining(ai_customer, "messages") == [D(0)]
    assert remaining(ai_customer, "ai_credits") == [D("92.4")]
    events = Event.objects.filter(customer=ai_customer, drawn_for__isnull=True).order_by("feature__feature_id")
    assert [(e.feature.feature_id, e.value, e.event_name, e.idempotency_key) for e in events] == [
        ("images", D(12), "generation", "gen-1"),
        ("messages", D(12), "generation", None),
    ]
    assert [[(d.feature.feature_id, d.value, d.event_name) for d in e.credit_draws.all()] for e in events] == [
        [("ai_credits", D("7.2"), "generation")],
        [("ai_credits", D("0.4"), "generation")],
    ]
    assert [f.feature_id for f in result.reached] == ["images", "messages", "ai_credits"]

    replay = balance_track(
        customer=ai_customer,
        features=features_for_event("generation"),
        value=12,
        actor=None,
        event_name="generation",
        idempotency_key="gen-1",
    )
    assert replay.replayed and Event.objects.filter(customer=ai_customer).count() == 4


def test_the_schema_accepts_only_metered_features_at_a_positive_cost_and_never_the_pool_itself(credits_catalogue):
    pool = credits_catalogue["ai_credits"]
    cases = [
        (CreditCost(credit_system=pool, metered_feature=credits_catalogue["sso"], credit_cost=1), "metered_feature"),
        (CreditCost(credit_system=pool, metered_feature=pool, credit_cost=1), "metered_feature"),
        (CreditCost(credit_system=pool, metered_feature=credits_catalogue["seats"], credit_cost=0), "credit_cost"),
        (
            CreditCost(
                credit_system=credits_catalogue["seats"], metered_feature=credits_catalogue["api_calls"], credit_cost=1
            ),
            "credit_system",
        ),
    ]
    for line, field in cases:
        with pytest.raises(ValidationError) as refused:
            line.full_clean()
        assert field in refused.value.message_dict
    CreditCost(credit_system=pool, metered_feature=credits_catalogue["seats"], credit_cost=D("0.5")).full_clean()


def test_an_archived_pool_still_draws_for_the_balances_customers_hold(ai_customer, credits_catalogue):
    """Archiving hides a pool from new plans; the customers holding it keep drawing from it (docs/security.md)."""
    Feature.objects.filter(pk=credits_catalogue["ai_credits"].pk).update(archived=True)
    balance_track(customer=ai_customer, feature=credits_catalogue["messages"], value=15, actor=None)
    assert (remaining(ai_customer, "messages"), remaining(ai_customer, "ai_credits")) == ([D(0)], [D(99)])
