"""Concurrent tracks and edits on one balance never lose an update (PostgreSQL row locks)."""

import threading
from decimal import Decimal

import pytest
from django.db import connections
from django.db.models import Sum

from billing.models import Balance, DailyUsage, Event
from billing.services.balances import balance_add, balance_create
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.models import AuditEntry

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

THREADS = 8
ROUNDS = 25


def test_eight_threads_tracking_and_editing_one_balance_end_exact(customer, catalogue, ops):
    product_attach(customer=customer, product=catalogue["scale"], actor=ops)
    balance = Balance.objects.get(customer=customer, feature=catalogue["api_calls"])
    start = balance.remaining
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            for i in range(ROUNDS):
                if n % 2:
                    balance_track(customer=customer, feature=catalogue["api_calls"], value=Decimal("3.5"), actor=None)
                else:
                    balance_add(balance=balance, delta=2, actor=ops, reason=f"thread {n} round {i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung: deadlock?"
    assert errors == []

    balance.refresh_from_db()
    tracked = Decimal("3.5") * ROUNDS * (THREADS // 2)
    added = Decimal(2) * ROUNDS * (THREADS // 2)
    assert balance.remaining == start - tracked + added
    assert balance.usage == tracked
    assert balance.adjustment == added
    assert Event.objects.filter(customer=customer).count() == ROUNDS * (THREADS // 2)
    assert AuditEntry.objects.filter(action="balance.add").count() == ROUNDS * (THREADS // 2)
    # The graphs' daily rollup saw every track too.
    assert DailyUsage.objects.filter(customer=customer).aggregate(s=Sum("value"))["s"] == tracked


def _in_parallel(clients: int, action, *, timeout: float = 120) -> None:
    """Run `action` in `clients` threads released at once, each with its own connection; fail on any error
    or a thread that hangs (a deadlock)."""
    barrier = threading.Barrier(clients)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(timeout=20)
            action()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung: deadlock?"
    assert errors == []


def test_concurrent_tracks_without_overage_never_go_below_zero(customer, catalogue):
    balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])  # 100 included

    def tracks() -> None:
        for _ in range(20):
            balance_track(customer=customer, feature=catalogue["messages"], value=1, actor=None)

    _in_parallel(THREADS, tracks, timeout=60)
    balance.refresh_from_db()
    assert balance.remaining == 0
    assert Event.objects.filter(customer=customer).count() == THREADS * 20


CLIENTS = 32


def test_32_clients_tracking_a_plan_balance_and_a_grant_of_one_feature_end_exact(customer, catalogue, ops):
    """The plan's monthly 100 is drawn first, then the one-off grant (README, balance rules): no track is lost."""
    plan = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    grant = balance_create(customer=customer, feature=catalogue["messages"], actor=ops, granted=300, reason="Top-up")

    def tracks() -> None:
        for _ in range(5):
            balance_track(customer=customer, feature=catalogue["messages"], value=Decimal("1.5"), actor=None)

    _in_parallel(CLIENTS, tracks)
    plan.refresh_from_db()
    grant.refresh_from_db()
    tracked = Decimal("1.5") * 5 * CLIENTS  # 240: 100 from the plan, 140 from the grant
    assert (plan.remaining, grant.remaining) == (Decimal(0), Decimal(300) - (tracked - 100))
    assert Event.objects.filter(customer=customer).count() == 5 * CLIENTS
    assert DailyUsage.objects.filter(customer=customer).aggregate(s=Sum("value"))["s"] == tracked


def test_concurrent_saves_of_forms_opened_on_one_value_never_both_pass(customer, ops, support):
    """Two people save the name from forms that both showed "Acme Corp": one wins, the other is told."""
    from customers.models import Customer
    from customers.services.customers import customer_update
    from customers.stale import StaleForm

    barrier = threading.Barrier(THREADS)
    saved: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            customer_update(
                customer=Customer.objects.get(pk=customer.pk),
                actor=ops if n % 2 else support,
                name=f"Acme {n}",
                expected={"name": "Acme Corp"},
            )
            saved.append(f"Acme {n}")
        except StaleForm as exc:
            refused.append(exc.message)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(saved) == 1 and len(refused) == THREADS - 1
    assert Customer.objects.get(pk=customer.pk).name == saved[0]
    assert all(f"it is now “{saved[0]}”" in message for message in refused)
    assert AuditEntry.objects.filter(action="customer.update").count() == 1


def test_32_clients_tracking_actions_an_event_name_and_the_pool_itself_end_exact(ai_customer, credits_catalogue):
    """Messages (own balance first, then the pool at 0.2), images (the pool at 0.6), the event name both count,
    and the pool itself, tracked at once: every credit lands, none twice."""
    from billing.services.track import features_for_event

    c = credits_catalogue
    pool = Balance.objects.get(customer=ai_customer, feature=c["ai_credits"])
    Balance.objects.filter(pk=pool.pk).update(allowance=1000, remaining=1000)
    generation = features_for_event("generation")
    kinds = iter(range(CLIENTS))
    lock = threading.Lock()

    def tracks() -> None:
        with lock:
            kind = next(kinds) % 4
        for _ in range(5):
            if kind == 0:
                balance_track(customer=ai_customer, feature=c["messages"], value=Decimal("1.5"), actor=None)
            elif kind == 1:
                balance_track(customer=ai_customer, feature=c["images"], value=Decimal("0.5"), actor=None)
            elif kind == 2:
                balance_track(customer=ai_customer, feature=c["ai_credits"], value=Decimal("0.25"), actor=None)
            else:
                balance_track(
                    customer=ai_customer, features=generation, value=Decimal(1), actor=None, event_name="generation"
                )

    _in_parallel(CLIENTS, tracks)
    per_kind = CLIENTS // 4 * 5
    messages = Decimal("1.5") * per_kind + per_kind  # 100: 10 of their own, 90 at 0.2 credits
    images = Decimal("0.5") * per_kind + per_kind  # 60 at 0.6 credits
    direct = Decimal("0.25") * per_kind  # 10 credits
    used = (messages - 10) * Decimal("0.2") + images * Decimal("0.6") + direct
    pool.refresh_from_db()
    own = Balance.objects.get(customer=ai_customer, feature=c["messages"])
    assert (own.remaining, pool.remaining, pool.usage) == (0, 1000 - used, used)
    usage = dict(
        DailyUsage.objects.filter(customer=ai_customer).values_list("feature__feature_id").annotate(s=Sum("value"))
    )
    assert usage == {"messages": messages, "images": images, "ai_credits": used}
    draws = Event.objects.filter(customer=ai_customer, drawn_for__isnull=False)
    assert draws.aggregate(s=Sum("value"))["s"] == used - direct
    assert Event.objects.filter(customer=ai_customer, drawn_for__isnull=True).count() == per_kind * 5
