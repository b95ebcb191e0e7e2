"""Grants outside the plan: a balance of a feature given with a reason, one-off or resetting, optionally
expiring; drawn down by track beside the plan's balance in the documented order, deletable with a reason."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Balance, Event
from billing.services.balances import balance_check, balance_create, balance_delete, balances_reset_due
from billing.services.track import balance_track
from customers.errors import ServiceError
from customers.models import AuditEntry

D = Decimal


def _plan_balance(customer, feature):
    return Balance.objects.get(customer=customer, feature=feature, customer_product__isnull=False)


def _grant(customer, feature, actor, **kwargs):
    return balance_create(customer=customer, feature=feature, actor=actor, reason="Goodwill top-up", **kwargs)


def test_a_one_off_grant_is_drawn_after_the_plans_resetting_balance(customer, catalogue, support):
    messages = catalogue["messages"]
    grant = _grant(customer, messages, support, granted=50)
    balance_track(customer=customer, feature=messages, value=D(120), actor=None)

    grant.refresh_from_db()
    assert (_plan_balance(customer, messages).remaining, grant.remaining) == (D(0), D(30))
    result = balance_check(customer=customer, feature=messages, required_balance=30)
    assert result.allowed and (result.balance.granted, result.balance.remaining) == (D(150), D(30))
    entry = AuditEntry.objects.get(action="balance.create", target_id=str(grant.pk))
    assert (entry.actor_label, entry.reason, entry.after["granted"]) == ("sam_support", "Goodwill top-up", 50)


def test_a_grant_that_expires_before_the_plans_reset_is_drawn_first_and_a_refund_gives_back_in_reverse(
    customer, catalogue, ops
):
    messages = catalogue["messages"]
    grant = _grant(customer, messages, ops, granted=20, expires_at=timezone.now() + timedelta(days=3))
    balance_track(customer=customer, feature=messages, value=D(25), actor=None)
    grant.refresh_from_db()
    assert (grant.remaining, _plan_balance(customer, messages).remaining) == (D(0), D(95))

    balance_track(customer=customer, feature=messages, value=D(-10), actor=None)  # the plan's usage goes back first
    grant.refresh_from_db()
    assert (grant.remaining, _plan_balance(customer, messages).remaining) == (D(5), D(100))


def test_an_expired_grant_is_gone_from_checks_and_tracks_and_its_events_stay(customer, catalogue, ops):
    messages = catalogue["messages"]
    grant = _grant(customer, messages, ops, granted=50, expires_at=timezone.now() + timedelta(days=3))
    balance_track(customer=customer, feature=messages, value=D(120), actor=None)
    Balance.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    result = balance_check(customer=customer, feature=messages, required_balance=31)
    assert not result.allowed  # the grant was drawn first (it expires before the plan resets): 30 are left
    assert [b.pk for b in result.balance.balances] == [_plan_balance(customer, messages).pk]
    assert (result.balance.granted, result.balance.remaining) == (D(100), D(30))
    balance_track(customer=customer, feature=messages, value=D(5), actor=None)
    assert _plan_balance(customer, messages).remaining == D(25)
    assert Balance.all_objects.get(pk=grant.pk).remaining == D(0)  # untouched since it expired
    assert not Balance.objects.filter(pk=grant.pk).exists()
    assert list(Event.objects.filter(customer=customer).values_list("value", flat=True).order_by("id")) == [
        D(120),
        D(5),
    ]


def test_a_resetting_grant_starts_at_its_next_reset_and_goes_back_to_its_amount(customer, catalogue, ops):
    now = timezone.now()
    first = now + timedelta(days=2)
    grant = _grant(customer, catalogue["api_calls"], ops, granted=40, interval="week", next_reset_at=first, now=now)
    assert grant.next_reset_at == first
    balance_track(customer=customer, feature=catalogue["api_calls"], value=D(15), actor=None, now=now)
    assert balances_reset_due(customer=customer, now=first + timedelta(minutes=1)) == 1
    grant.refresh_from_db()
    assert (grant.remaining, grant.next_reset_at) == (D(40), first + timedelta(weeks=1))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"expires_at": "past"}, "expires_at"),
        ({"next_reset_at": "future"}, "next_reset_at"),  # a one-off balance has no reset
        ({"interval": "month", "next_reset_at": "past"}, "next_reset_at"),
        ({"granted": -5}, "granted"),
        ({"interval": "fortnight"}, "interval"),
    ],
)
def test_bad_grants_are_refused_and_change_nothing(customer, catalogue, ops, kwargs, field):
    moments = {"past": timezone.now() - timedelta(hours=1), "future": timezone.now() + timedelta(days=1)}
    kwargs = {k: moments.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    kwargs = {"granted": 10, "reason": "Goodwill", **kwargs}
    before = (Balance.all_objects.count(), AuditEntry.objects.count())
    with pytest.raises(ServiceError) as refused:
        balance_create(customer=customer, feature=catalogue["messages"], actor=ops, **kwargs)
    assert refused.value.field == field and refused.value.message
    assert (Balance.all_objects.count(), AuditEntry.objects.count()) == before


def test_deleting_a_grant_keeps_its_events_and_is_audited(customer, catalogue, support):
    messages = catalogue["messages"]
    grant = _grant(customer, messages, support, granted=500)
    balance_track(customer=customer, feature=messages, value=D(130), actor=None)

    with pytest.raises(ServiceError):
        balance_delete(balance=grant, actor=support, reason=" ")
    balance_delete(balance=grant, actor=support, reason="Given by mistake")

    assert not Balance.all_objects.filter(pk=grant.pk).exists()
    assert Event.objects.get(customer=customer).value == D(130)
    entry = AuditEntry.objects.get(action="balance.delete", target_id=str(grant.pk))
    assert (entry.actor_label, entry.reason, entry.before["remaining"]) == ("sam_support", "Given by mistake", 470)
    assert balance_check(customer=customer, feature=messages).balance.granted == D(100)


def test_a_plans_balance_cannot_be_deleted(customer, catalogue, ops):
    plan_balance = _plan_balance(customer, catalogue["messages"])
    with pytest.raises(ServiceError) as refused:
        balance_delete(balance=plan_balance, actor=ops, reason="Tidy up")
    assert refused.value.code == "balance_of_a_plan"
    assert Balance.objects.filter(pk=plan_balance.pk).exists()
    assert not AuditEntry.objects.filter(action="balance.delete").exists()
