"""Every track runs through the one engine (billing/engine/): one statement loads the rows, the rule
(`draw`, plain Python) decides, one statement stores. What is stored must be exactly what the rule gives,
case by case — the cases the one-statement fast path (now deleted) was compared on."""

import copy
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.engine.decide import Draw, draw
from billing.models import Balance, Event
from billing.services.balances import balance_create, draw_order
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.models import AuditEntry

D = Decimal
STATES = [
    # allowance, adjustment, remaining, overage_allowed, usage_limit
    (D(100), D(0), D(100), False, None),
    (D(100), D(0), D(3), False, None),
    (D(100), D(0), D(0), False, None),
    (D(100), D(20), D("7.5"), False, None),
    (D(100), D(0), D(100), True, None),
    (D(100), D(0), D(2), True, None),
    (D(100), D(0), D(-40), True, None),
    (D(100), D(0), D(10), True, D(150)),
    (D(100), D(0), D(-45), True, D(150)),
    (D(100), D(-30), D(5), True, D(80)),
    (D(0), D(0), D(0), True, D(5)),
]
VALUES = [D(0), D(1), D("2.5"), D(10), D(60), D(1000), D(-1), D(-30), D("-0.000001")]


def _deduct(balances, value):
    """The rule, on copies: `draw` from the balances of one feature, in order (no credit system)."""
    return draw([Draw(balance=b) for b in balances], value)


# A track in a test's transaction: its savepoint, the load, the store, the savepoint's release.
ENGINE_QUERIES = 4


@pytest.mark.parametrize(("state", "value"), list(itertools.product(STATES, VALUES)))
def test_the_engine_stores_what_the_rule_gives(customer, catalogue, state, value):
    allowance, adjustment, remaining, overage, limit = state
    Balance.objects.filter(customer=customer).delete()
    balance = Balance.objects.create(
        customer=customer,
        feature=catalogue["messages"],
        allowance=allowance,
        adjustment=adjustment,
        remaining=remaining,
        overage_allowed=overage,
        usage_limit=limit,
        interval="month",
        next_reset_at=timezone.now() + timedelta(days=10),
    )
    expected = copy.copy(balance)
    recorded = _deduct([expected], value)
    # A refund of more than the usage gives back what it can, and its event records only that.
    common = value >= 0 or -value <= allowance + adjustment - remaining

    with CaptureQueriesContext(connection) as queries:
        result = balance_track(
            customer=customer, feature=catalogue["messages"], value=value, actor=None, properties={"case": "fast"}
        )
    # one statement to load (and lock), one to store: the balance, the event, the day's rollup
    assert len(queries) == ENGINE_QUERIES

    balance.refresh_from_db()
    assert balance.remaining == expected.remaining
    assert balance.adjustment == adjustment and balance.allowance == allowance
    assert [b.remaining for b in result.balances] == [expected.remaining]
    event = Event.objects.get(pk=result.event.pk)
    assert recorded == (value if common else -(allowance + adjustment - remaining))
    assert (event.value, event.customer, event.feature, event.properties) == (
        recorded,
        customer,
        catalogue["messages"],
        {"case": "fast"},
    )


def test_the_answer_carries_the_stored_balance(scale_customer_api_calls, django_assert_num_queries):
    customer, feature = scale_customer_api_calls
    result = balance_track(customer=customer, feature=feature, value=D(250), actor=None)
    stored = Balance.objects.get(customer=customer, feature=feature)
    (answered,) = result.balances
    assert (answered.pk, answered.remaining, answered.granted, answered.usage, answered.next_reset_at) == (
        stored.pk,
        stored.remaining,
        stored.granted,
        stored.usage,
        stored.next_reset_at,
    )
    assert answered.customer_product_id == stored.customer_product_id
    with django_assert_num_queries(0):  # the product that grants it comes with the answer
        assert answered.customer_product.product.product_id == "scale"
    assert result.event.pk == Event.objects.get(customer=customer).pk


@pytest.fixture
def scale_customer_api_calls(customer, catalogue):
    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    return customer, catalogue["api_calls"]


def test_a_due_reset_is_decided_with_the_track_and_audited(customer, catalogue):
    balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    Balance.objects.filter(pk=balance.pk).update(remaining=D(4), next_reset_at=timezone.now() - timedelta(hours=1))
    balance_track(customer=customer, feature=catalogue["messages"], value=D(10), actor=None)
    balance.refresh_from_db()
    assert balance.remaining == D(90)  # reset to 100 first, then 10 used
    assert AuditEntry.objects.filter(action="balance.reset", target_id=str(balance.pk)).count() == 1


def test_several_balances_are_drawn_in_order(customer, catalogue):
    balance_create(customer=customer, feature=catalogue["messages"], actor=None, granted=50, reason="Goodwill")
    balance_track(customer=customer, feature=catalogue["messages"], value=D(120), actor=None)
    remaining = list(
        Balance.objects.filter(customer=customer, feature=catalogue["messages"])
        .order_by("id")
        .values_list("remaining", flat=True)
    )
    assert remaining == [D(0), D(30)]
    assert Event.objects.get(customer=customer).value == D(120)


def test_an_unlimited_balance_takes_everything_and_changes_nothing(customer, catalogue):
    Balance.objects.filter(customer=customer).update(unlimited=True, remaining=D(5))
    balance_track(customer=customer, feature=catalogue["messages"], value=D(9), actor=None)
    assert Balance.objects.get(customer=customer).remaining == D(5)
    assert Event.objects.get(customer=customer).value == D(9)


def test_no_balance_still_records_the_event(customer, catalogue):
    balance_track(customer=customer, feature=catalogue["api_calls"], value=D(3), actor=None)
    assert Event.objects.get(customer=customer, feature=catalogue["api_calls"]).value == D(3)


GRANTS = {  # how the grant beside the plan's monthly balance (100, resetting in about a month) is made
    "one-off": {},
    "expiring before the plan resets": {"expires_at": timedelta(days=3)},
    "resetting weekly": {"interval": "week"},
}


@pytest.mark.parametrize(("grant", "value"), list(itertools.product(GRANTS, [D(30), D(130), D(500), D(-20)])))
def test_a_plan_balance_and_a_grant_are_drawn_in_the_documented_order(customer, catalogue, grant, value):
    messages = catalogue["messages"]
    Balance.objects.filter(customer=customer).update(remaining=D(90))  # 10 used, so a refund has usage to give back
    extra = {k: timezone.now() + v if isinstance(v, timedelta) else v for k, v in GRANTS[grant].items()}
    granted = balance_create(customer=customer, feature=messages, actor=None, granted=50, reason="Top-up", **extra)
    Balance.objects.filter(pk=granted.pk).update(remaining=D(45))
    expected = [copy.copy(b) for b in draw_order(Balance.objects.filter(customer=customer, feature=messages))]
    _deduct(expected, value)

    balance_track(customer=customer, feature=messages, value=value, actor=None)

    stored = {b.pk: b.remaining for b in Balance.objects.filter(customer=customer, feature=messages)}
    assert stored == {b.pk: b.remaining for b in expected}


def _grant(customer, feature, **kwargs):
    return balance_create(customer=customer, feature=feature, actor=None, granted=50, reason="Top-up", **kwargs)


def test_an_expired_grant_is_skipped(customer, catalogue, django_assert_num_queries):
    messages = catalogue["messages"]
    grant = _grant(customer, messages, expires_at=timezone.now() + timedelta(days=1))
    Balance.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_assert_num_queries(ENGINE_QUERIES):  # the plan's balance is the only one left
        result = balance_track(customer=customer, feature=messages, value=D(7), actor=None)
    assert [b.remaining for b in result.balances] == [D(93)]
    assert Balance.all_objects.get(pk=grant.pk).remaining == D(50)


def test_a_grant_expiring_between_two_tracks_is_skipped_with_or_without_an_idempotency_key(customer, catalogue):
    messages = catalogue["messages"]
    now = timezone.now()
    grant = balance_create(
        customer=customer,
        feature=messages,
        actor=None,
        granted=50,
        reason="Top-up",
        expires_at=now + timedelta(hours=1),
    )
    balance_track(customer=customer, feature=messages, value=D(10), actor=None, now=now)  # the grant goes first
    later = now + timedelta(hours=2)
    balance_track(
        customer=customer, feature=messages, value=D(7), actor=None, now=later
    )  # at `later`: the grant has expired
    balance_track(customer=customer, feature=messages, value=D(3), actor=None, now=later, idempotency_key="k1")
    assert Balance.all_objects.get(pk=grant.pk).remaining == D(40)
    assert Balance.objects.get(customer=customer, feature=messages, customer_product__isnull=False).remaining == D(90)
