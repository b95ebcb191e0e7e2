"""Catalogue writes raced from several clients at once (each thread its own connection): they queue, the first
create wins and the others are told it already exists (409), a held plan changed at once gets one new version;
never a unique-constraint 500."""

from __future__ import annotations

import threading
from functools import partial

import pytest
from django.db import connections
from django.test import Client

from billing.models import Feature, Price, Product
from billing.services.products import product_attach
from customers.models import AuditEntry
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from tests.api.conftest import ApiClient

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 10
ROUNDS = 3


def _race(requests: list) -> list:
    """Each request (a callable) in its own thread, released at once; their responses. Fails on an exception
    or a thread that hangs."""
    barrier = threading.Barrier(len(requests))
    responses: list = []
    errors: list[BaseException] = []

    def work(request) -> None:
        try:
            barrier.wait(timeout=30)
            responses.append(request())
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(r,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung: deadlock?"
    assert errors == []
    return responses


@pytest.fixture
def raw_key(ops) -> str:
    return api_key_create(env="sandbox", name="Backend", actor=ops)[1]


def _post(raw_key: str, path: str, body: dict):
    return partial(ApiClient(Client(), raw_key).post, path, body)


def test_concurrent_creates_of_one_feature_make_it_once_and_tell_the_others(raw_key):
    for round_ in range(ROUNDS):
        feature_id = f"words_{round_}"
        body = {"feature_id": feature_id, "name": "Words", "type": "metered", "consumable": True}
        responses = _race([_post(raw_key, "features.create", body) for _ in range(CLIENTS)])
        assert sorted(r.status_code for r in responses) == [200] + [409] * (CLIENTS - 1)
        refused = [r.json() for r in responses if r.status_code == 409]
        assert {r["code"] for r in refused} == {"feature_already_exists"}
        assert all(f"feature {feature_id} already exists" in r["message"] for r in refused)
        assert Feature.objects.filter(feature_id=feature_id).count() == 1
        assert AuditEntry.objects.filter(action="feature.create", target_id=feature_id).count() == 1


def test_concurrent_creates_of_one_plan_make_it_once_and_tell_the_others(raw_key, catalogue):
    for round_ in range(ROUNDS):
        plan_id = f"team_{round_}"
        body = {"plan_id": plan_id, "name": "Team", "price": {"amount": 49, "interval": "month"}}
        responses = _race([_post(raw_key, "plans.create", body) for _ in range(CLIENTS)])
        assert sorted(r.status_code for r in responses) == [200] + [409] * (CLIENTS - 1)
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"product_already_exists"}
        assert Product.objects.filter(product_id=plan_id).count() == 1


def test_concurrent_price_changes_of_a_held_plan_make_one_new_version(raw_key, customer, catalogue):
    """Acme holds Pro: the first change makes version n + 1, the ones after it change that version in place (nobody
    holds it yet); the answers are all 200, and the last one queued is the price the newest version has."""
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    for round_ in range(ROUNDS):
        newest = Product.objects.filter(product_id="pro").order_by("-version").first()
        if round_:  # someone holds the newest version too, so this round's changes make a new one
            holder = customer_create(env="live", customer_id=f"holder_{round_}", actor=None)
            product_attach(customer=holder, product=newest, actor=None)
        held_amount = newest.prices.get(type="fixed").amount
        amounts = [100 + round_ * 100 + n for n in range(CLIENTS)]
        bodies = [{"plan_id": "pro", "price": {"amount": a, "interval": "month"}} for a in amounts]
        responses = _race([_post(raw_key, "plans.update", body) for body in bodies])
        assert [r.status_code for r in responses] == [200] * CLIENTS, [r.content for r in responses]
        versions = sorted(Product.objects.filter(product_id="pro").values_list("version", flat=True))
        assert versions == list(range(1, newest.version + 2))
        latest = Product.objects.get(product_id="pro", version=newest.version + 1)
        assert Price.objects.get(product=latest, type="fixed").amount in {a * 100 for a in amounts}
        assert Price.objects.get(product=newest, type="fixed").amount == held_amount  # theirs is untouched
