"""The plan lifecycle services: attach, upgrade, downgrade, cancel, uncancel and the period-end transitions,
on a frozen clock, with what they store and audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.models import Balance, CustomerProduct
from billing.services.plans import (
    END_OF_CYCLE,
    GRANT_FREE,
    NOW,
    plan_attach,
    plan_cancel,
    plan_preview,
    plan_uncancel,
    plans_roll_due,
)
from billing.services.track import balance_track
from customers.errors import ServiceError
from customers.models import AuditEntry

T0 = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)  # after the real clock: the command's now is before it
PAST = datetime.now(UTC) - timedelta(days=70)


def _statuses(customer) -> dict[str, str]:
    cps = CustomerProduct.objects.filter(customer=customer).exclude(status="expired").select_related("product")
    return {cp.product.product_id: cp.status_label for cp in cps}


def _granted(customer, feature_id: str) -> tuple[Decimal, Decimal]:
    b = Balance.objects.get(customer=customer, feature__feature_id=feature_id)
    return b.granted, b.remaining


def _grant(customer, product, ops, *, now=T0, **kw):
    return plan_attach(
        customer=customer, product=product, actor=ops, method=GRANT_FREE, reason="Pilot deal", now=now, **kw
    )


def test_upgrade_then_downgrade_then_uncancel_then_cancel_now_on_one_customer(customer, catalogue, ops):
    balance_track(customer=customer, feature=catalogue["messages"], value=Decimal(30), actor=None, now=T0)

    preview = plan_preview(customer=customer, product=catalogue["pro"], now=T0)
    assert preview.action == "upgrade" and preview.when == NOW
    messages = next(c for c in preview.balances if c.feature.feature_id == "messages")
    assert (messages.before, messages.after, messages.usage, messages.remaining_after) == (100, 5000, 30, 4970)
    assert {c.feature.feature_id: c.kind for c in preview.balances} == {
        "messages": "changed",
        "seats": "gained",
        "sso": "gained",
    }

    result = _grant(customer, catalogue["pro"], ops)
    assert result.customer_product.granted_free
    assert _statuses(customer) == {"pro": "Active"}
    assert _granted(customer, "messages") == (5000, 4970)  # usage carried over

    down = plan_preview(customer=customer, product=catalogue["free"], now=T0 + timedelta(days=1))
    assert down.action == "downgrade" and down.when == END_OF_CYCLE and down.due_today == 0
    plan_attach(customer=customer, product=catalogue["free"], actor=ops, reason="Asked to", now=T0 + timedelta(days=1))
    assert _statuses(customer) == {"pro": "Cancelling", "free": "Scheduled"}
    assert _granted(customer, "messages") == (5000, 4970)  # nothing changes until the period end

    pro = CustomerProduct.objects.get(customer=customer, product=catalogue["pro"])
    plan_uncancel(customer=customer, customer_product=pro, actor=ops, reason="Changed their mind", now=T0)
    assert _statuses(customer) == {"pro": "Active"}

    plan_cancel(customer=customer, customer_product=pro, actor=ops, when=NOW, reason="Churned", now=T0)
    assert _statuses(customer) == {"free": "Active"}  # the default plan comes back
    assert _granted(customer, "messages")[0] == 100
    assert not Balance.objects.filter(customer_product=pro).exists()
    ops_entries = AuditEntry.objects.filter(customer=customer, actor_label="olivia_ops")
    reasons = list(ops_entries.values_list("reason", flat=True))
    assert {"Pilot deal", "Asked to", "Changed their mind", "Churned"} <= set(reasons)


def test_a_downgrade_starts_at_the_period_end_and_the_default_plan_stays_away(customer, catalogue, ops):
    _grant(customer, catalogue["scale"], ops)
    plan_attach(customer=customer, product=catalogue["pro"], actor=ops, reason="Cheaper", now=T0)
    assert _statuses(customer) == {"scale": "Cancelling", "pro": "Scheduled"}
    end = CustomerProduct.objects.get(customer=customer, product=catalogue["scale"]).current_period_end
    assert end == datetime(2030, 4, 10, 12, 0, tzinfo=UTC)

    assert plans_roll_due(customer=customer, now=end - timedelta(seconds=1)) == 0
    assert plans_roll_due(customer=customer, now=end + timedelta(seconds=1)) == 2
    assert _statuses(customer) == {"pro": "Active"}
    pro = CustomerProduct.objects.get(customer=customer, product=catalogue["pro"])
    assert (pro.current_period_start, pro.current_period_end) == (end, datetime(2030, 5, 10, 12, 0, tzinfo=UTC))
    assert _granted(customer, "messages") == (5000, 5000)
    system = AuditEntry.objects.filter(customer=customer, actor_label="system", reason="Billing period ended")
    assert system.count() == 2


def test_cancel_at_the_end_of_the_cycle_runs_to_the_period_end_then_the_default_plan_returns(customer, catalogue, ops):
    cp = _grant(customer, catalogue["pro"], ops).customer_product
    plan_cancel(customer=customer, customer_product=cp, actor=ops, when=END_OF_CYCLE, reason="Leaving", now=T0)
    cp.refresh_from_db()
    assert cp.canceled_at == T0 and cp.status_label == "Cancelling"
    assert _granted(customer, "messages") == (5000, 5000)  # balances run to the period end

    call_command("reset_balances", stdout=open("/dev/null", "w"))  # noqa: SIM115 (now is before the period end)
    assert _statuses(customer) == {"pro": "Cancelling"}
    plans_roll_due(now=cp.current_period_end)
    assert _statuses(customer) == {"free": "Active"}
    assert CustomerProduct.objects.get(pk=cp.pk).status == "expired"


def test_an_active_plan_rolls_its_period_lazily_when_read(customer, catalogue, ops, client):
    cp = _grant(customer, catalogue["pro"], ops, now=PAST).customer_product
    client.force_login(ops)
    assert client.get(f"/customers/{customer.customer_id}/").status_code == 200
    cp.refresh_from_db()
    assert cp.current_period_start < datetime.now(UTC) < cp.current_period_end
    assert cp.status == "active"


def test_reset_balances_applies_period_ends_in_bulk(customer, other_customer, catalogue, ops, capsys):
    for c in (customer, other_customer):
        cp = _grant(c, catalogue["pro"], ops, now=PAST).customer_product
        plan_cancel(customer=c, customer_product=cp, actor=ops, when=END_OF_CYCLE, now=PAST + timedelta(days=1))
    call_command("reset_balances")
    assert "Moved 2 products on at their period end." in capsys.readouterr().out
    assert _statuses(customer) == _statuses(other_customer) == {"free": "Active"}


def test_add_ons_stack_on_the_plan(customer, catalogue, ops):
    _grant(customer, catalogue["pro"], ops)
    preview = plan_preview(customer=customer, product=catalogue["seats_addon"], now=T0)
    assert preview.action == "add_on" and preview.outgoing == []
    _grant(customer, catalogue["seats_addon"], ops)
    assert _statuses(customer) == {"pro": "Active", "seats_addon": "Active"}


def test_an_upgrade_drops_a_scheduled_downgrade(customer, catalogue, ops):
    _grant(customer, catalogue["pro"], ops)
    plan_attach(customer=customer, product=catalogue["free"], actor=ops, now=T0)
    _grant(customer, catalogue["scale"], ops)
    assert _statuses(customer) == {"scale": "Active"}


def test_attach_now_instead_of_at_the_period_end_is_an_explicit_choice(customer, catalogue, ops):
    _grant(customer, catalogue["scale"], ops)
    _grant(customer, catalogue["pro"], ops, when=NOW)
    assert _statuses(customer) == {"pro": "Active"}


@pytest.mark.parametrize(
    "case, code",
    [
        ("already_on_it", "product_already_attached"),
        ("nothing_to_uncancel", "nothing_to_uncancel"),
        ("paid_without_stripe", "stripe_not_connected"),
        ("grant_without_reason", "invalid_input"),
        ("end_of_cycle_for_an_upgrade", "invalid_input"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(customer, catalogue, ops, case, code):
    free = CustomerProduct.objects.get(customer=customer)
    before = AuditEntry.objects.count()
    calls = {
        "already_on_it": lambda: plan_attach(customer=customer, product=catalogue["free"], actor=ops),
        "nothing_to_uncancel": lambda: plan_uncancel(customer=customer, customer_product=free, actor=ops),
        "paid_without_stripe": lambda: plan_attach(
            customer=customer, product=catalogue["pro"], actor=ops, method="checkout"
        ),
        "grant_without_reason": lambda: plan_attach(
            customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE
        ),
        "end_of_cycle_for_an_upgrade": lambda: plan_attach(
            customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x", when=END_OF_CYCLE
        ),
    }
    with pytest.raises(ServiceError) as exc:
        calls[case]()
    assert exc.value.code == code
    assert AuditEntry.objects.count() == before
    assert _statuses(customer) == {"free": "Active"}


def test_cancel_at_the_end_of_the_cycle_calls_off_a_pending_downgrade(customer, catalogue, ops):
    scale = _grant(customer, catalogue["scale"], ops).customer_product
    plan_attach(customer=customer, product=catalogue["pro"], actor=ops, reason="Cheaper", now=T0)
    assert _statuses(customer) == {"scale": "Cancelling", "pro": "Scheduled"}
    plan_cancel(customer=customer, customer_product=scale, actor=ops, when=END_OF_CYCLE, now=T0)
    assert _statuses(customer) == {"scale": "Cancelling"}
    plans_roll_due(customer=customer, now=scale.current_period_end)
    assert _statuses(customer) == {"free": "Active"}


def test_cancelling_a_scheduled_plan_keeps_the_current_one(customer, catalogue, ops):
    _grant(customer, catalogue["scale"], ops)
    pro = plan_attach(customer=customer, product=catalogue["pro"], actor=ops, reason="Cheaper", now=T0).customer_product
    plan_cancel(customer=customer, customer_product=pro, actor=ops, when=NOW, now=T0)
    assert _statuses(customer) == {"scale": "Active"}
