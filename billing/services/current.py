"""Bringing a customer current: the period ends that have passed are applied (a cancellation expires, a scheduled
plan starts, a trial ends, a plan rolls on to its next period), then the balance resets that have fallen due.

Every reader of a customer's billing calls this first (the customer page, the dashboard's balance and product
forms, the API's customer and balance reads), so that no read shows a balance as it was before its reset, and
the reads themselves (`billing.selectors`, the serializers) never write. The balance engine brings a customer
current on its own inside a check or a track (`billing.engine.run.bring_current`); the cron command brings
everyone current (`everyone_bring_current`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import CharField, Value
from django.utils import timezone

from billing.engine import run as engine
from billing.models import Balance, CustomerProduct
from billing.services.balances import balances_reset_due, due_balances
from billing.services.plans import due_products, is_roll_due, plans_roll_due
from customers.models import Customer

__all__ = ["customer_bring_current", "customers_bring_current", "everyone_bring_current", "is_current"]

_PLAN, _RESET = "plan", "reset"


def is_current(*, products: Iterable[CustomerProduct], balances: Iterable[Balance], now: datetime) -> bool:
    """Whether a customer whose products and balances the caller has just read has nothing due: no query. (A
    caller that read them first, as the customer page does, brings the customer current only when needed, then
    reads again.)"""
    return not is_roll_due(list(products), now) and not any(b.is_due(now) for b in balances)


def customers_bring_current(*, customers: Iterable[Customer], now: datetime | None = None) -> set[int]:
    """Bring these customers current: one query finds which have anything due, and only those are changed.
    Returns the pks of the customers that had something due (what was read of them before is stale)."""
    now = now or timezone.now()
    by_pk = {c.pk: c for c in customers}
    if not by_pk:
        return set()
    pks = list(by_pk)
    plans = due_products(now).filter(customer_id__in=pks).annotate(kind=Value(_PLAN, output_field=CharField()))
    resets = due_balances(now).filter(customer_id__in=pks).annotate(kind=Value(_RESET, output_field=CharField()))
    due: dict[int, set[str]] = {}
    rows = plans.values_list("customer_id", "kind").order_by()
    for pk, kind in rows.union(resets.values_list("customer_id", "kind").order_by()):  # one query for both
        due.setdefault(pk, set()).add(kind)
    for pk, kinds in sorted(due.items()):
        _apply(by_pk[pk], kinds, now)
    return set(due)


def customer_bring_current(*, customer: Customer, now: datetime | None = None) -> bool:
    """Bring one customer current (one query when nothing is due). Returns whether anything was due."""
    return bool(customers_bring_current(customers=[customer], now=now))


def everyone_bring_current(*, now: datetime | None = None) -> tuple[int, int]:
    """Every customer's period ends, then every due reset (the cron command). Returns (products moved on,
    balances reset)."""
    now = now or timezone.now()
    return plans_roll_due(now=now), balances_reset_due(now=now)


def _apply(customer: Customer, kinds: set[str], now: datetime) -> None:
    if _PLAN in kinds:
        # A period end first: what it starts or rolls may itself have a reset due, so resets are looked for after.
        plans_roll_due(customer=customer, now=now)
        balances_reset_due(customer=customer, now=now)
    else:
        engine.bring_current(customer, now=now)
