"""The engine's decide step (billing/engine/decide.py), case by case: plain Python over rows, no database.
Each row of a table is one rule of the README's "Balance rules" (or Autumn's track guide): the balances
before, the request, and what must come out — the balances after, the events recorded, the answer."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.engine.decide import Rows, decide_check, decide_check_and_track, decide_track, overage
from billing.models import Balance, Feature

D = Decimal
NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
MESSAGES = Feature(pk=1, feature_id="messages", name="Messages", type="metered")
IMAGES = Feature(pk=2, feature_id="images", name="Images", type="metered")
CREDITS = Feature(pk=3, feature_id="ai_credits", name="AI credits", type="credit_system")
SSO = Feature(pk=4, feature_id="sso", name="SSO", type="boolean")


def _balance(
    pk,
    feature=MESSAGES,
    *,
    granted="100",
    remaining=None,
    overage=False,
    limit=None,
    unlimited=False,
    interval="month",
    reset_in=timedelta(days=10),
    expires_in=None,
    age=timedelta(days=30),
    entity=None,
):
    granted = D(granted)
    b = Balance(
        pk=pk,
        entity_id=entity,
        allowance=granted,
        adjustment=D(0),
        remaining=granted if remaining is None else D(remaining),
        overage_allowed=overage,
        usage_limit=None if limit is None else D(limit),
        unlimited=unlimited,
        interval=interval,
        interval_count=1,
        next_reset_at=None if interval == "lifetime" else NOW + reset_in,
        expires_at=None if expires_in is None else NOW + expires_in,
        created_at=NOW - age,
    )
    b.feature = feature
    return b


def _rows(*balances, features=(MESSAGES,), pools=None):
    return Rows(features=list(features), pools=pools or {}, balances=list(balances))


POOL = {MESSAGES.pk: [(CREDITS, D("0.2"))], IMAGES.pk: [(CREDITS, D("0.6"))]}

# (rule, balances, value, the balances' remaining after (by pk), the events' values (feature id, value))
TRACKS = [
    ("a use draws remaining down", [_balance(1)], "30", {1: "70"}, [("messages", "30")]),
    (
        "without overage a balance stops at 0, the event keeps the full value",
        [_balance(1)],
        "250",
        {1: "0"},
        [("messages", "250")],
    ),
    ("with overage it goes negative", [_balance(1, overage=True)], "250", {1: "-150"}, [("messages", "250")]),
    (
        "overage stops at the usage limit",
        [_balance(1, overage=True, limit="150")],
        "250",
        {1: "-50"},
        [("messages", "250")],
    ),
    ("a refund gives usage back", [_balance(1, remaining="60")], "-15", {1: "75"}, [("messages", "-15")]),
    (
        "a refund gives back at most what was used, and records only that",
        [_balance(1, remaining="90")],
        "-30",
        {1: "100"},
        [("messages", "-10")],
    ),
    (
        "an unlimited balance takes everything and changes nothing",
        [_balance(1, unlimited=True, remaining="5")],
        "9",
        {1: "5"},
        [("messages", "9")],
    ),
    ("no balance: the event is still recorded", [], "3", {}, [("messages", "3")]),
    (
        "the balance lost soonest goes first (a grant expiring before the plan resets)",
        [_balance(1), _balance(2, granted="50", interval="lifetime", expires_in=timedelta(days=3))],
        "60",
        {1: "90", 2: "0"},
        [("messages", "60")],
    ),
    (
        "balances that never reset or expire go last",
        [_balance(1, granted="50", interval="lifetime"), _balance(2)],
        "120",
        {1: "30", 2: "0"},
        [("messages", "120")],
    ),
    (
        "a refund gives back in the reverse order",
        [_balance(1, remaining="0"), _balance(2, granted="50", interval="lifetime", remaining="40")],
        "-15",
        {1: "5", 2: "50"},
        [("messages", "-15")],
    ),
    (
        "overage goes on the first in order that allows it",
        [_balance(1, granted="10", interval="lifetime"), _balance(2, granted="10", overage=True)],
        "25",
        {1: "0", 2: "-5"},
        [("messages", "25")],
    ),
    (
        "an expired grant is skipped",
        [_balance(1), _balance(2, granted="50", expires_in=timedelta(seconds=-1))],
        "7",
        {1: "93", 2: "50"},
        [("messages", "7")],
    ),
    (
        "a due reset comes first",
        [_balance(1, remaining="4", reset_in=timedelta(hours=-1))],
        "10",
        {1: "90"},
        [("messages", "10")],
    ),
    (
        "the own balance first, then the pool at its cost",
        [_balance(1, granted="10"), _balance(2, CREDITS, granted="100")],
        "15",
        {1: "0", 2: "99"},
        [("messages", "15"), ("ai_credits", "1")],
    ),
    (
        "a refund gives the own balance back before the pool",
        [_balance(1, granted="10", remaining="0"), _balance(2, CREDITS, granted="100", remaining="98")],
        "-15",
        {1: "10", 2: "99"},
        [("messages", "-15"), ("ai_credits", "-1")],
    ),
]


@pytest.mark.parametrize(("rule", "balances", "value", "after", "events"), TRACKS, ids=[t[0] for t in TRACKS])
def test_decide_track_follows_the_balance_rules(rule, balances, value, after, events):
    rows = _rows(*balances, pools=POOL)
    decision = decide_track(rows, D(value), NOW)
    assert {b.pk: b.remaining for b in balances} == {pk: D(v) for pk, v in after.items()}, rule
    assert [(e.feature.feature_id, e.value) for e in decision.events] == [(f, D(v)) for f, v in events], rule
    pool_events = [e for e in decision.events if e.feature == CREDITS]
    assert all(e.drawn_for == 0 for e in pool_events)  # a pool's event names the use it paid for


# Entities (Autumn's sortCusEntsForDeduction): the rows `load` read for a request naming an entity are its own
# balances and the customer-level ones; for one naming none, every balance. (rule, entity named, balances, value,
# the balances' remaining after, by pk)
SEAT_1, SEAT_2 = 11, 12
ENTITY_TRACKS = [
    (
        "naming an entity draws its own balance first, then the customer's",
        True,
        [_balance(1, granted="100", age=timedelta(days=60)), _balance(2, granted="500", entity=SEAT_1)],
        "550",
        {1: "50", 2: "0"},
    ),
    (
        "naming an entity draws its own balance even when the customer's would be lost sooner",
        True,
        [_balance(1, reset_in=timedelta(days=1)), _balance(2, granted="500", entity=SEAT_1)],
        "30",
        {1: "100", 2: "470"},
    ),
    (
        "naming none draws the customer's balance first, then the entities' in draw order",
        False,
        [
            _balance(1, granted="500", entity=SEAT_1, reset_in=timedelta(days=3)),
            _balance(2, granted="100"),
            _balance(3, granted="500", entity=SEAT_2),
        ],
        "700",
        {1: "0", 2: "0", 3: "400"},
    ),
    (
        "an entity's refund gives back to its own balance first, then the customer's",
        True,
        [_balance(1, remaining="50"), _balance(2, granted="500", remaining="0", entity=SEAT_1)],
        "-520",
        {1: "70", 2: "500"},
    ),
    (
        "a refund naming none gives back to the customer's balance first, then the entities'",
        False,
        [_balance(1, remaining="50"), _balance(2, granted="500", remaining="0", entity=SEAT_1)],
        "-520",
        {1: "100", 2: "470"},
    ),
    (
        "an entity's balance without overage stops at 0 and the customer's with overage goes negative",
        True,
        [_balance(1, granted="0", overage=True), _balance(2, granted="10", entity=SEAT_1)],
        "25",
        {1: "-15", 2: "0"},
    ),
]


@pytest.mark.parametrize(
    ("rule", "named", "balances", "value", "after"), ENTITY_TRACKS, ids=[t[0] for t in ENTITY_TRACKS]
)
def test_decide_track_draws_an_entitys_balances_by_autumns_order(rule, named, balances, value, after):
    rows = _rows(*balances)
    rows.entity_named = named
    decision = decide_track(rows, D(value), NOW)
    assert {b.pk: b.remaining for b in balances} == {pk: D(v) for pk, v in after.items()}, rule
    assert [(e.feature.feature_id, e.value) for e in decision.events] == [("messages", D(value))], rule


def test_a_check_naming_an_entity_adds_its_balance_and_the_customers():
    rows = _rows(_balance(1, granted="100"), _balance(2, granted="500", remaining="20", entity=SEAT_1))
    rows.entity_named = True
    assert decide_check(rows, MESSAGES, D(120), NOW).allowed
    refused = decide_check(rows, MESSAGES, D(121), NOW)
    assert (refused.allowed, refused.balance.remaining) == (False, D(120))


def test_a_track_by_event_name_draws_every_feature_that_lists_it():
    own_images, pool = _balance(1, IMAGES, granted="2"), _balance(2, CREDITS, granted="100")
    decision = decide_track(_rows(own_images, pool, features=(IMAGES, MESSAGES), pools=POOL), D(3), NOW)
    # images: 2 own, 1 × 0.6 from the pool; messages: none of its own, 3 × 0.2 from the pool
    assert (own_images.remaining, pool.remaining) == (D(0), D("98.8"))
    assert [(e.feature.feature_id, e.value, e.drawn_for) for e in decision.events] == [
        ("images", D(3), None),
        ("ai_credits", D("0.6"), 0),
        ("messages", D(3), None),
        ("ai_credits", D("0.6"), 2),
    ]
    assert set(decision.reached) == {IMAGES, MESSAGES, CREDITS}


def test_what_a_track_writes_is_the_balances_it_changed_or_tracked():
    plan, pool, expired = _balance(1), _balance(2, CREDITS), _balance(3, expires_in=timedelta(seconds=-1))
    decision = decide_track(_rows(plan, pool, expired, pools=POOL), D(1), NOW)
    assert [b.pk for b in decision.changed] == [1]  # the pool was not reached; the expired grant is gone


def test_a_track_leaves_an_expired_grant_as_it_is_even_when_its_reset_is_due():
    plan = _balance(1)
    expired = _balance(2, remaining="3", reset_in=timedelta(days=-1), expires_in=timedelta(seconds=-1))
    decision = decide_track(_rows(plan, expired), D(1), NOW)
    assert decision.resets == [] and [b.pk for b in decision.changed] == [1]
    assert expired.remaining == D(3)


# (rule, balances, required, allowed, answered by, required in its units)
CHECKS = [
    ("covered", [_balance(1)], "100", True, "messages", "100"),
    ("not covered", [_balance(1)], "101", False, "messages", "101"),
    ("overage allows more", [_balance(1, overage=True, remaining="0")], "1000", True, "messages", "1000"),
    ("up to the usage limit", [_balance(1, overage=True, limit="150", remaining="-40")], "10", True, "messages", "10"),
    ("not beyond it", [_balance(1, overage=True, limit="150", remaining="-40")], "11", False, "messages", "11"),
    ("unlimited", [_balance(1, unlimited=True, remaining="0")], "10", True, "messages", "10"),
    ("several balances add up", [_balance(1, remaining="10"), _balance(2, granted="5")], "15", True, "messages", "15"),
    (
        "an expired grant does not count",
        [_balance(1, remaining="10"), _balance(2, expires_in=timedelta(0))],
        "11",
        False,
        "messages",
        "11",
    ),
    (
        "the pool answers when the own balance can't",
        [_balance(1, remaining="1"), _balance(2, CREDITS)],
        "500",
        True,
        "ai_credits",
        "100",
    ),
    (
        "nor the pool: the pool answers no",
        [_balance(1, remaining="1"), _balance(2, CREDITS)],
        "500.000001",
        False,
        "ai_credits",
        "100.0000002",
    ),
    ("no balance at all", [], "1", False, "messages", "1"),
]


@pytest.mark.parametrize(("rule", "balances", "required", "allowed", "by", "units"), CHECKS, ids=[c[0] for c in CHECKS])
def test_decide_check_follows_the_balance_rules(rule, balances, required, allowed, by, units):
    result = decide_check(_rows(*balances, pools=POOL), MESSAGES, D(required), NOW)
    assert (result.allowed, result.answered_by.feature_id) == (allowed, by), rule
    assert result.required == D(units).quantize(D("0.000001"), rounding="ROUND_UP")


def test_a_flag_is_allowed_when_granted_and_never_tracked():
    granted = _balance(1, SSO, granted="0", interval="lifetime")
    decision = decide_check_and_track(_rows(granted, features=(SSO,)), SSO, D(1), NOW)
    assert decision.check.allowed and not decision.events
    assert not decide_check(_rows(features=(SSO,)), SSO, D(1), NOW).allowed


def test_a_check_with_send_event_tracks_only_when_allowed():
    plan = _balance(1, remaining="5")
    decision = decide_check_and_track(_rows(plan), MESSAGES, D(5), NOW)
    assert decision.check.allowed and plan.remaining == 0
    assert [(e.feature, e.value) for e in decision.events] == [(MESSAGES, D(5))]
    refused = decide_check_and_track(_rows(plan), MESSAGES, D(1), NOW)
    assert not refused.check.allowed and not refused.events and plan.remaining == 0


def test_overage_is_what_is_below_zero():
    assert (overage(D(-250)), overage(D(0)), overage(D(3))) == (D(250), D(0), D(0))
