"""Plan changes raced on one customer, through the API and the dashboard, each client in its own thread with its
own database connection: one change at a time per customer, whatever the customer holds; the others wait or are
told (409 / the popup's message), never a duplicate plan, a deadlock or a 500."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest
from django.db import connections
from django.test import Client

from billing.models import Balance, CustomerProduct, Product
from billing.services.plans import END_OF_CYCLE, GRANT_FREE, plan_attach
from customers.models import Customer
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from tests.api.conftest import ApiClient
from tests.fake_stripe import WEBHOOK_SECRET, event, signed
from tests.helpers import form_values

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 16
ROUNDS = 4


def _race(clients: int, prepare) -> list[int]:
    """`prepare(n)` in each of `clients` threads, each with its own connection, then the request it returns in all
    of them released at once; their status codes. Fails on an exception or a thread that hangs."""
    barrier = threading.Barrier(clients)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            request = prepare(n)
            connections.close_all()  # back to the pool while the others get ready
            barrier.wait(timeout=30)
            statuses.append(request().status_code)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung: deadlock?"
    assert errors == []
    return statuses


def _planless(customer_id: str, env: str = "sandbox"):
    """A customer with no plan at all: the catalogue has no default plan."""
    Product.objects.update(is_default=False)
    return customer_create(env=env, customer_id=customer_id, actor=None, name=customer_id.title())


def _attach_form(user, customer, product):
    """The Attach Product popup opened by `user`, granting `product` now: the POST that submits it, to run later."""
    client = Client()
    client.force_login(user)
    url = f"/customers/{customer.customer_id}/products/attach/"
    page = client.get(url, {"product": product.pk})
    form = form_values(page, product=product.pk, when="now", method=GRANT_FREE, reason="Race")
    return partial(client.post, url, form)


def _cancel_form(user, customer, cp):
    """The Cancel popup of `cp` opened by `user`, cancelling now: the POST that submits it, to run later."""
    client = Client()
    client.force_login(user)
    url = f"/customers/{customer.customer_id}/products/{cp.pk}/cancel/"
    form = form_values(client.get(url), when="now", reason="Race")
    return partial(client.post, url, form)


def _live_plans(customer) -> list[str]:
    live = CustomerProduct.objects.filter(customer=customer, product__is_add_on=False).exclude(
        status__in=["expired", "scheduled"]
    )
    return sorted(live.values_list("product__product_id", flat=True))


def _granted(customer, feature) -> list:
    return [b.granted for b in Balance.objects.filter(customer=customer, feature=feature)]


def test_16_concurrent_api_attaches_of_one_plan_to_a_planless_customer_leave_one_copy(catalogue, ops):
    _, raw_key = api_key_create(env="sandbox", name="Backend", actor=ops)
    api = partial(ApiClient, raw_key=raw_key)
    for round_ in range(ROUNDS):
        customer = _planless(f"race_api_{round_}")
        body = {"customer_id": customer.customer_id, "plan_id": "free"}
        statuses = _race(CLIENTS, lambda n, body=body: partial(api(Client()).post, "billing.attach", body))
        assert sorted(statuses) == [200] + [409] * (CLIENTS - 1)
        assert _live_plans(customer) == ["free"]
        assert _granted(customer, catalogue["messages"]) == [100]  # counted once, not 400


def test_16_concurrent_dashboard_attaches_to_a_planless_customer_leave_one_plan(catalogue, ops):
    """Half the clients grant Pro, half Scale: whichever lands first, the next replaces it (an upgrade) or is told
    it is already there; never Pro, Pro, Scale and Scale all active."""
    products = [catalogue["pro"], catalogue["scale"]]
    for round_ in range(ROUNDS):
        customer = _planless(f"race_dash_{round_}")
        statuses = _race(CLIENTS, lambda n, c=customer: _attach_form(ops, c, products[n % 2]))
        assert set(statuses) <= {302, 422} and 302 in statuses
        plans = _live_plans(customer)
        assert len(plans) == 1
        included = {"pro": 5000, "scale": 20000}[plans[0]]
        assert _granted(customer, catalogue["messages"]) == [included]


def test_concurrent_attach_and_cancel_on_one_customer_never_deadlock(catalogue, ops):
    """On a customer on Pro with a downgrade to Free scheduled, Attach Scale and Cancel of the scheduled Free at
    once, the cancel a few milliseconds ahead or behind: one waits for the other (one lock order: the customer,
    then its products by id), and each page answers the change or its clear refusal, never a 500 ("deadlock
    detected")."""
    for round_ in range(12):
        customer = customer_create(env="sandbox", customer_id=f"race_mix_{round_}", actor=None, name="Mix")
        plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")
        scheduled = plan_attach(customer=customer, product=catalogue["free"], actor=ops, when=END_OF_CYCLE)
        delay = (round_ % 6) * 0.002  # the attach a few milliseconds behind the cancel, or not

        def change(n: int, customer=customer, scheduled=scheduled.customer_product, delay=delay):
            if n:
                return _cancel_form(ops, customer, scheduled)
            attach = _attach_form(ops, customer, catalogue["scale"])
            return lambda: time.sleep(delay) or attach()

        statuses = _race(2, change)
        assert set(statuses) <= {302, 422} and 302 in statuses
        assert _live_plans(customer) == ["scale"]
        assert CustomerProduct.objects.filter(customer=customer, status="scheduled").count() == 0
        assert _granted(customer, catalogue["messages"]) == [20000]


def test_concurrent_deliveries_of_a_checkouts_subscription_to_a_planless_customer_attach_it_once(catalogue, settings):
    """A checkout completed: Stripe sends the subscription's created and updated events at once (several
    deliveries). Whichever applies first attaches the plan; the others find it linked to the subscription."""
    settings.STRIPE_TEST_WEBHOOK_SECRET = WEBHOOK_SECRET
    for round_ in range(ROUNDS):
        customer = _planless(f"race_hook_{round_}")
        Customer.objects.filter(pk=customer.pk).update(stripe_id=f"cus_hook_{round_}")
        sub = {
            "id": f"sub_hook_{round_}",
            "object": "subscription",
            "customer": f"cus_hook_{round_}",
            "status": "active",
            "metadata": {"product_id": "pro", "product_version": "1", "customer_id": customer.customer_id},
            "trial_end": None,
            "canceled_at": None,
            "ended_at": None,
            "start_date": 1_760_000_000,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": "si_1",
                        "current_period_start": 1_760_000_000,
                        "current_period_end": 1_762_678_400,
                        "price": {"id": "price_x", "product": "prod_x"},
                    }
                ],
            },
        }

        def delivery(n: int, sub=sub):
            kind = "customer.subscription.created" if n % 2 else "customer.subscription.updated"
            body, header = signed(event(kind, sub, created=100 + n))
            client = Client()
            return partial(
                client.post, "/webhooks/stripe", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
            )

        statuses = _race(8, delivery)
        assert statuses == [200] * 8
        live = CustomerProduct.objects.filter(customer=customer).exclude(status="expired")
        assert [(cp.product.product_id, cp.stripe_subscription_id) for cp in live] == [("pro", sub["id"])]
        assert _granted(customer, catalogue["messages"]) == [5000]
