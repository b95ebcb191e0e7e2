"""The balance rules of PRODUCT.md, through the services every client calls."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Balance, Event
from billing.services.balances import balance_add, balance_check, balance_create, balance_set, balances_reset_due
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.errors import Conflict, ServiceError
from customers.models import AuditEntry


def _balance(customer, feature) -> Balance:
    return Balance.objects.get(customer=customer, feature=feature)


@pytest.fixture
def scale_customer(customer, catalogue):
    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    return customer


# --- track ---------------------------------------------------------------------------------------


def test_track_draws_down_remaining_and_writes_the_event(customer, catalogue):
    result = balance_track(
        customer=customer, feature=catalogue["messages"], value=30, actor=None, properties={"model": "fast"}
    )
    balance = _balance(customer, catalogue["messages"])
    assert (balance.remaining, balance.usage, balance.granted) == (70, 30, 100)
    event = Event.objects.get(pk=result.event.pk)
    assert (event.value, event.feature, event.properties) == (30, catalogue["messages"], {"model": "fast"})


def test_track_without_overage_stops_at_zero_but_records_the_full_value(customer, catalogue):
    balance_track(customer=customer, feature=catalogue["messages"], value=250, actor=None)
    assert _balance(customer, catalogue["messages"]).remaining == 0
    assert Event.objects.get(customer=customer).value == 250


def test_track_with_overage_goes_negative(scale_customer, catalogue):
    balance_track(customer=scale_customer, feature=catalogue["api_calls"], value=100_250, actor=None)
    balance = _balance(scale_customer, catalogue["api_calls"])
    assert balance.remaining == -250
    assert balance.overage == 250


def test_track_by_event_name_finds_the_feature(customer, catalogue):
    from billing.services.track import feature_for_track

    assert feature_for_track(event_name="message_sent") == catalogue["messages"]
    with pytest.raises(ServiceError, match="No feature"):
        feature_for_track(event_name="nothing_tracks_this")


def test_track_with_an_idempotency_key_counts_once(customer, catalogue):
    for _ in range(2):
        balance_track(customer=customer, feature=catalogue["messages"], value=5, actor=None, idempotency_key="k1")
    assert _balance(customer, catalogue["messages"]).remaining == 95
    assert Event.objects.filter(customer=customer).count() == 1


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "abc", "", None, "1.1234567", "1e16", True])
def test_track_refuses_bad_values_and_writes_nothing(customer, catalogue, bad):
    with pytest.raises(ServiceError):
        balance_track(customer=customer, feature=catalogue["messages"], value=bad, actor=None)
    assert _balance(customer, catalogue["messages"]).remaining == 100
    assert not Event.objects.exists()


def test_track_accepts_fractional_credits(customer, catalogue):
    balance_track(customer=customer, feature=catalogue["messages"], value="0.125", actor=None)
    assert _balance(customer, catalogue["messages"]).remaining == Decimal("99.875")


# --- check ---------------------------------------------------------------------------------------


def test_check_allows_while_remaining_covers_the_required_balance(customer, catalogue):
    assert balance_check(customer=customer, feature=catalogue["messages"]).allowed
    assert balance_check(customer=customer, feature=catalogue["messages"], required_balance=100).allowed
    assert not balance_check(customer=customer, feature=catalogue["messages"], required_balance=101).allowed
    balance_track(customer=customer, feature=catalogue["messages"], value=100, actor=None)
    result = balance_check(customer=customer, feature=catalogue["messages"])
    assert not result.allowed
    assert result.balance.remaining == 0


def test_check_allows_overage_until_the_usage_limit(customer, catalogue):
    from billing.models import ProductItem

    ProductItem.objects.filter(product=catalogue["scale"], feature=catalogue["api_calls"]).update(
        usage_limit=Decimal(100_500)
    )
    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    balance_track(customer=customer, feature=catalogue["api_calls"], value=100_400, actor=None)
    assert balance_check(customer=customer, feature=catalogue["api_calls"], required_balance=100).allowed
    assert not balance_check(customer=customer, feature=catalogue["api_calls"], required_balance=101).allowed


def test_check_unlimited_is_always_allowed(customer, catalogue):
    from billing.models import ProductItem

    ProductItem.objects.filter(product=catalogue["pro"], feature=catalogue["messages"]).update(unlimited=True)
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    balance_track(customer=customer, feature=catalogue["messages"], value=10**9, actor=None)
    assert balance_check(customer=customer, feature=catalogue["messages"], required_balance=10**12).allowed


def test_check_boolean_feature_is_allowed_only_when_granted(customer, catalogue):
    assert not balance_check(customer=customer, feature=catalogue["sso"]).allowed
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    assert balance_check(customer=customer, feature=catalogue["sso"]).allowed


# --- set and add ---------------------------------------------------------------------------------


def test_set_balance_moves_granted_and_keeps_recorded_usage(customer, catalogue, ops):
    balance_track(customer=customer, feature=catalogue["messages"], value=40, actor=None)
    balance = balance_set(
        balance=_balance(customer, catalogue["messages"]), new_balance=500, actor=ops, reason="goodwill"
    )
    assert (balance.remaining, balance.usage, balance.granted, balance.adjustment) == (500, 40, 540, 440)
    entry = AuditEntry.objects.get(action="balance.set")
    assert entry.actor_user == ops
    assert entry.reason == "goodwill"
    assert (entry.before["remaining"], entry.after["remaining"]) == (60, 500)


def test_add_to_balance_is_the_same_rule_with_a_delta(customer, catalogue, ops):
    balance_track(customer=customer, feature=catalogue["messages"], value=40, actor=None)
    balance = balance_add(balance=_balance(customer, catalogue["messages"]), delta=-10, actor=ops, reason="fix")
    assert (balance.remaining, balance.usage, balance.granted) == (50, 40, 90)
    assert AuditEntry.objects.filter(action="balance.add", reason="fix").exists()


def test_negative_balance_charges_overage_where_allowed(scale_customer, catalogue, ops):
    balance = _balance(scale_customer, catalogue["api_calls"])
    balance = balance_set(balance=balance, new_balance=-1500, actor=ops, reason="missed usage from import")
    assert balance.remaining == -1500 and balance.usage == 0 and balance.overage == 1500


def test_negative_balance_is_refused_without_overage(customer, catalogue, ops):
    with pytest.raises(ServiceError, match="overage"):
        balance_set(balance=_balance(customer, catalogue["messages"]), new_balance=-1, actor=ops, reason="x")
    assert _balance(customer, catalogue["messages"]).remaining == 100
    assert not AuditEntry.objects.filter(action="balance.set").exists()


def test_unlimited_balance_cannot_be_edited(customer, catalogue, ops):
    balance = balance_create(
        customer=customer, feature=catalogue["api_calls"], actor=ops, unlimited=True, reason="Goodwill"
    )
    with pytest.raises(ServiceError, match="unlimited"):
        balance_set(balance=balance, new_balance=5, actor=ops, reason="x")


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required(customer, catalogue, ops, reason):
    with pytest.raises(ServiceError, match="reason"):
        balance_set(balance=_balance(customer, catalogue["messages"]), new_balance=5, actor=ops, reason=reason)
    assert _balance(customer, catalogue["messages"]).remaining == 100


def test_new_reset_date_must_be_in_the_future_and_not_on_lifetime(customer, catalogue, ops):
    balance = _balance(customer, catalogue["messages"])
    with pytest.raises(ServiceError, match="future"):
        balance_set(
            balance=balance, new_balance=5, actor=ops, reason="x", next_reset_at=timezone.now() - timedelta(minutes=1)
        )
    lifetime = balance_create(customer=customer, feature=catalogue["seats"], actor=ops, granted=3, reason="Goodwill")
    with pytest.raises(ServiceError, match="lifetime"):
        balance_set(
            balance=lifetime, new_balance=5, actor=ops, reason="x", next_reset_at=timezone.now() + timedelta(days=3)
        )
    later = timezone.now() + timedelta(days=3)
    balance = balance_set(balance=balance, new_balance=5, actor=ops, reason="x", next_reset_at=later)
    assert balance.next_reset_at == later


def test_edit_refused_when_the_balance_changed_since_it_was_read(customer, catalogue, ops):
    balance = _balance(customer, catalogue["messages"])
    balance_track(customer=customer, feature=catalogue["messages"], value=1, actor=None)
    with pytest.raises(Conflict, match="changed"):
        balance_set(balance=balance, new_balance=500, actor=ops, reason="x", expected_remaining=balance.remaining)
    assert _balance(customer, catalogue["messages"]).remaining == 99


# --- reset ---------------------------------------------------------------------------------------


def test_reset_restores_the_allowance_and_drops_the_adjustment(customer, catalogue, ops):
    balance = _balance(customer, catalogue["messages"])
    balance_track(customer=customer, feature=catalogue["messages"], value=60, actor=None)
    balance_add(balance=balance, delta=200, actor=ops, reason="goodwill")
    later = balance.next_reset_at + timedelta(minutes=1)
    assert balances_reset_due(customer=customer, now=later) == 1
    balance.refresh_from_db()
    assert (balance.remaining, balance.adjustment, balance.granted) == (100, 0, 100)
    assert balance.next_reset_at > later
    assert AuditEntry.objects.filter(action="balance.reset", actor_label="system").count() == 1


def test_reset_skips_missed_periods(customer, catalogue):
    balance = _balance(customer, catalogue["messages"])
    anchor = datetime(2026, 1, 31, 12, tzinfo=UTC)
    Balance.objects.filter(pk=balance.pk).update(next_reset_at=anchor, remaining=3)
    balances_reset_due(customer=customer, now=datetime(2026, 5, 10, tzinfo=UTC))
    balance.refresh_from_db()
    # Monthly from 31 Jan: 28 Feb, 31 Mar, 30 Apr, then 31 May (counted from the anchor, no drift).
    assert balance.next_reset_at == datetime(2026, 5, 31, 12, tzinfo=UTC)
    assert balance.remaining == 100


def test_lifetime_balances_never_reset(customer, catalogue, ops):
    balance = balance_create(customer=customer, feature=catalogue["seats"], actor=ops, granted=3, reason="Goodwill")
    balance_track(customer=customer, feature=catalogue["seats"], value=2, actor=None)
    assert balances_reset_due(now=timezone.now() + timedelta(days=3650)) == 1  # only the monthly one
    balance.refresh_from_db()
    assert balance.remaining == 1 and balance.next_reset_at is None


def test_reads_and_writes_reset_lazily(customer, catalogue):
    balance = _balance(customer, catalogue["messages"])
    Balance.objects.filter(pk=balance.pk).update(remaining=0, next_reset_at=timezone.now() - timedelta(hours=1))
    assert balance_check(customer=customer, feature=catalogue["messages"]).balance.remaining == 100
    Balance.objects.filter(pk=balance.pk).update(remaining=0, next_reset_at=timezone.now() - timedelta(hours=1))
    balance_track(customer=customer, feature=catalogue["messages"], value=1, actor=None)
    assert _balance(customer, catalogue["messages"]).remaining == 99


def test_reset_balances_command_resets_due_balances(customer, catalogue, capsys):
    from django.core.management import call_command

    balance = _balance(customer, catalogue["messages"])
    Balance.objects.filter(pk=balance.pk).update(remaining=7, next_reset_at=timezone.now() - timedelta(days=1))
    call_command("reset_balances")
    assert "Reset 1 balance." in capsys.readouterr().out
    balance.refresh_from_db()
    assert balance.remaining == 100


# --- products ------------------------------------------------------------------------------------


def test_switching_plan_carries_recorded_usage_over(customer, catalogue, ops):
    balance_track(customer=customer, feature=catalogue["messages"], value=80, actor=None)
    cp = product_attach(customer=customer, product=catalogue["pro"], actor=ops)
    new = Balance.objects.get(customer_product=cp, feature=catalogue["messages"])
    assert (new.granted, new.usage, new.remaining) == (5000, 80, 4920)
    assert customer.customer_products.get(product=catalogue["free"]).status == "expired"
    assert Balance.objects.filter(customer=customer, feature=catalogue["messages"]).count() == 1


def test_add_on_adds_balances_beside_the_plan(customer, catalogue, ops):
    product_attach(customer=customer, product=catalogue["pro"], actor=ops)
    product_attach(customer=customer, product=catalogue["seats_addon"], actor=ops)
    result = balance_check(customer=customer, feature=catalogue["seats"], required_balance=20)
    assert result.allowed and result.balance.granted == 20


def test_attaching_a_product_twice_is_refused(customer, catalogue, ops):
    with pytest.raises(Conflict, match="already has"):
        product_attach(customer=customer, product=catalogue["free"], actor=ops)


def test_overage_stops_at_the_largest_quantity_kept(scale_customer, catalogue):
    for _ in range(3):
        balance_track(customer=scale_customer, feature=catalogue["api_calls"], value=10**15, actor=None)
    balance = _balance(scale_customer, catalogue["api_calls"])
    assert balance.remaining == -(10**15)
    assert Event.objects.filter(customer=scale_customer, value=10**15).count() == 3
