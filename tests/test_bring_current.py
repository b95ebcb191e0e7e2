"""Bringing a customer current (billing.services.current): the period ends that have passed, then the resets
that have fallen due, applied before any read shows the customer; the reads themselves write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Balance, CustomerProduct
from billing.selectors import customer_balances
from billing.services.current import customer_bring_current, customers_bring_current
from billing.services.plans import END_OF_CYCLE, GRANT_FREE, plan_attach, plan_cancel
from customers.models import AuditEntry

PAST = datetime.now(UTC) - timedelta(days=70)


def _due_reset(customer, remaining=7) -> Balance:
    balance = Balance.objects.get(customer=customer, feature__feature_id="messages")
    Balance.objects.filter(pk=balance.pk).update(remaining=remaining, next_reset_at=timezone.now() - timedelta(hours=1))
    return balance


def test_a_customer_with_nothing_due_is_brought_current_in_one_query_and_unchanged(customer):
    entries = AuditEntry.objects.filter(customer=customer).count()
    with CaptureQueriesContext(connection) as captured:
        assert customer_bring_current(customer=customer) is False
    assert len(captured) == 1
    assert AuditEntry.objects.filter(customer=customer).count() == entries


def test_a_due_reset_is_applied_and_audited_as_the_system(customer):
    balance = _due_reset(customer)
    assert customer_bring_current(customer=customer) is True
    balance.refresh_from_db()
    assert balance.remaining == 100 and balance.next_reset_at > timezone.now()
    assert AuditEntry.objects.filter(customer=customer, action="balance.reset", actor_label="system").count() == 1


def test_reading_the_balances_writes_nothing_until_the_customer_is_brought_current(customer):
    _due_reset(customer)
    assert [b.remaining for b in customer_balances(customer)] == [7]  # as stored: the read does not reset
    assert not AuditEntry.objects.filter(customer=customer, action="balance.reset").exists()
    customer_bring_current(customer=customer)
    assert [b.remaining for b in customer_balances(customer)] == [100]


def test_a_period_end_is_applied_before_the_resets(customer, catalogue, ops):
    cp = plan_attach(
        customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="Pilot", now=PAST
    ).customer_product
    plan_cancel(customer=customer, customer_product=cp, actor=ops, when=END_OF_CYCLE, now=PAST + timedelta(days=1))
    assert customer_bring_current(customer=customer) is True
    assert CustomerProduct.objects.get(pk=cp.pk).status == "expired"
    # The default plan came back with its own balance, current.
    assert [(b.customer_product.product.product_id, b.remaining) for b in customer_balances(customer)] == [
        ("free", 100)
    ]


def test_a_page_of_customers_is_looked_at_in_one_query_and_only_the_due_ones_change(customer, other_customer):
    _due_reset(other_customer, remaining=3)
    with CaptureQueriesContext(connection) as captured:
        assert customers_bring_current(customers=[customer]) == set()
    assert len(captured) == 1
    assert customers_bring_current(customers=[customer, other_customer]) == {other_customer.pk}
    assert Balance.objects.get(customer=other_customer).remaining == 100
    assert not AuditEntry.objects.filter(customer=customer, action="balance.reset").exists()
