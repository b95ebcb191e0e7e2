"""Per-entity balances: a plan item named per seat ("500 messages per seat") gives each of the customer's entities
its own balance. balances.check/track (and the 1.2 /check, /track) with `entity_id` read and draw that entity's
balances and the customer-level ones, the entity's first (Autumn's rule); without `entity_id`, every balance of
the customer, the customer-level ones first. An entity the customer doesn't have is a 404."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from autumn_sdk import Autumn
from autumn_sdk.errors import AutumnDefaultError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from autumn_admin.api import hot
from billing.models import Balance, Entity, Event, Product, ProductItem
from billing.services.balances import balance_check, balance_create
from billing.services.entities import entity_create, entity_delete
from billing.services.products import product_attach
from customers.services.customers import customer_create

CHECK = {"customer_id": "acme_corp", "feature_id": "messages"}


def _ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def team(catalogue):
    """A team plan: 10 seats, and 500 messages a month per seat."""
    product = Product.objects.create(product_id="team", name="Team")
    ProductItem.objects.create(product=product, feature=catalogue["seats"], included=Decimal(10), interval="lifetime")
    ProductItem.objects.create(
        product=product,
        feature=catalogue["messages"],
        included=Decimal(500),
        interval="month",
        entity_feature=catalogue["seats"],
    )
    return product


@pytest.fixture
def on_team(customer, catalogue, team):
    """Acme Corp on Team with two seats: user_1 (made on Pro, before Team was attached) and user_2 (after)."""
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    entity_create(customer=customer, entity_id="user_1", feature=catalogue["seats"], actor=None)
    product_attach(customer=customer, product=team, actor=None)
    entity_create(customer=customer, entity_id="user_2", feature=catalogue["seats"], actor=None)
    return customer


def _remaining(entity_id: str | None) -> list[Decimal]:
    balances = Balance.objects.filter(feature__feature_id="messages")
    if entity_id is None:
        return [b.remaining for b in balances.filter(entity=None)]
    return [b.remaining for b in balances.filter(entity__entity_id=entity_id)]


def test_each_entity_gets_its_own_balance_of_a_per_seat_item(on_team, team):
    balances = Balance.objects.filter(feature__feature_id="messages", customer_product__product=team)
    assert sorted((b.entity.entity_id, b.allowance, b.remaining, b.interval) for b in balances) == [
        ("user_1", 500, 500, "month"),
        ("user_2", 500, 500, "month"),
    ]
    # The plan's item is per seat: no customer-level balance of it.
    assert not balances.filter(entity=None).exists()
    first, second = balances.order_by("id")
    assert first.next_reset_at == second.next_reset_at  # the plan's reset, whenever the entity came


def test_a_track_naming_an_entity_draws_its_balance_and_a_check_reads_it(api, on_team):
    tracked = _ok(api.post("balances.track", {**CHECK, "entity_id": "user_1", "value": 30}))
    assert (tracked["entity_id"], tracked["balance"]["remaining"], tracked["balance"]["usage"]) == ("user_1", 470, 30)
    assert _remaining("user_1") == [470]
    assert _remaining("user_2") == [500]

    one = _ok(api.post("balances.check", {**CHECK, "entity_id": "user_2", "required_balance": 500}))
    assert (one["allowed"], one["entity_id"], one["balance"]["remaining"]) == (True, "user_2", 500)
    over = _ok(api.post("balances.check", {**CHECK, "entity_id": "user_1", "required_balance": 471}))
    assert (over["allowed"], over["balance"]["remaining"]) == (False, 470)


def test_without_entity_id_the_customer_has_every_entitys_balance(api, on_team):
    _ok(api.post("balances.track", {**CHECK, "entity_id": "user_1", "value": 30}))

    whole = _ok(api.post("balances.check", {**CHECK, "required_balance": 970}))
    assert (whole["allowed"], whole["entity_id"], whole["balance"]["granted"], whole["balance"]["remaining"]) == (
        True,
        None,
        1000,
        970,
    )
    _ok(api.post("balances.track", {**CHECK, "value": 480}))
    # Drawn across the entities, in their order: user_1's 470 first, then 10 of user_2's.
    assert (_remaining("user_1"), _remaining("user_2")) == ([0], [490])


def test_an_entity_draws_its_own_balance_before_the_customers(api, on_team, catalogue):
    balance_create(customer=on_team, feature=catalogue["messages"], actor=None, reason="Shared pool", granted=100)

    checked = _ok(api.post("balances.check", {**CHECK, "entity_id": "user_2", "required_balance": 600}))
    assert (checked["allowed"], checked["balance"]["remaining"]) == (True, 600)

    _ok(api.post("balances.track", {**CHECK, "entity_id": "user_2", "value": 550}))
    assert (_remaining("user_2"), _remaining(None), _remaining("user_1")) == ([0], [50], [500])

    # Without an entity the customer-level balance goes first.
    _ok(api.post("balances.track", {**CHECK, "value": 60}))
    assert (_remaining(None), _remaining("user_1"), _remaining("user_2")) == ([0], [490], [0])


def test_an_entity_the_customer_does_not_have_is_a_404_and_nothing_is_tracked(api, on_team, other_customer, catalogue):
    entity_create(customer=other_customer, entity_id="globex_seat", feature=catalogue["seats"], actor=None)
    events = Event.objects.count()
    for path in ("balances.check", "balances.track", "check", "track"):
        for entity_id in ("nobody", "globex_seat"):
            answer = api.post(path, {**CHECK, "entity_id": entity_id})
            assert (answer.status_code, answer.json()["code"]) == (404, "entity_not_found"), (path, entity_id)
    batch = api.post("balances.batch_track", [{**CHECK, "value": 1}, {**CHECK, "entity_id": "nobody"}])
    assert (batch.status_code, batch.json()["code"]) == (404, "entity_not_found")
    assert Event.objects.count() == events
    assert (_remaining("user_1"), _remaining("user_2")) == ([500], [500])


def test_a_bad_entity_id_is_refused_by_name(api, on_team):
    answer = api.post("balances.check", {**CHECK, "entity_id": "has space"})
    assert answer.status_code == 422
    assert "entity_id" in answer.content.decode()


def test_the_1_2_check_and_track_name_the_entity_too(api, on_team):
    _ok(api.post("track", {**CHECK, "entity_id": "user_2", "value": 7}))
    assert _remaining("user_2") == [493]
    assert _ok(api.post("check", {**CHECK, "entity_id": "user_2", "required_balance": 493}))["allowed"] is True
    assert _ok(api.post("check", {**CHECK, "entity_id": "user_2", "required_balance": 494}))["allowed"] is False
    sent = _ok(api.post("balances.check", {**CHECK, "entity_id": "user_1", "required_balance": 5, "send_event": True}))
    assert sent["allowed"] is True
    assert _remaining("user_1") == [495]
    _ok(api.post("balances.batch_track", [{**CHECK, "entity_id": "user_1", "value": 5}, {**CHECK, "value": 1}]))
    assert (_remaining("user_1"), _remaining("user_2")) == ([489], [493])


def test_the_lean_path_serves_entity_checks_and_tracks_in_one_statement(api, on_team, sandbox_key):
    headers = {"authorization": f"Bearer {sandbox_key[1]}", "content-type": "application/json"}
    body = b'{"customer_id": "acme_corp", "feature_id": "messages", "entity_id": "user_1", "value": 4}'
    with CaptureQueriesContext(connection) as ctx:
        status, answer = hot.answer("balances.check", headers, body)
    assert status == 200 and b'"entity_id": "user_1"' in answer
    assert len(ctx.captured_queries) == 1
    status, answer = hot.answer("balances.track", headers, body)
    assert status == 200
    assert _remaining("user_1") == [496]
    # An entity the customer doesn't have: the operation answers (its 404), the lean path writes nothing.
    assert hot.answer("balances.track", headers, body.replace(b"user_1", b"nobody")) is None
    assert _remaining("user_1") == [496]


def test_a_deleted_entitys_balance_ends_with_it(api, on_team):
    _ok(api.post("balances.track", {**CHECK, "entity_id": "user_1", "value": 30}))
    entity_delete(entity=Entity.objects.get(entity_id="user_1"), actor=None, reason="Left the team")

    assert Balance.all_objects.get(entity__entity_id="user_1").expires_at is not None
    whole = _ok(api.post("balances.check", CHECK))
    assert (whole["balance"]["granted"], whole["balance"]["remaining"]) == (500, 500)
    gone = api.post("balances.check", {**CHECK, "entity_id": "user_1"})
    assert (gone.status_code, gone.json()["code"]) == (404, "entity_not_found")
    # A new entity of the same id starts afresh.
    entity_create(customer=on_team, entity_id="user_1", feature=Entity.objects.first().feature, actor=None)
    again = _ok(api.post("balances.check", {**CHECK, "entity_id": "user_1"}))
    assert again["balance"]["remaining"] == 500


def test_an_entitys_balance_resets_on_the_plans_interval(on_team, catalogue):
    entity = Entity.objects.get(entity_id="user_1")
    Balance.objects.filter(entity=entity).update(remaining=Decimal(12))
    later = Balance.objects.get(entity=entity).next_reset_at + timedelta(minutes=1)

    result = balance_check(
        customer=on_team, feature=catalogue["messages"], required_balance=500, entity=entity, now=later
    )

    assert (result.allowed, result.balance.remaining) == (True, 500)
    assert Balance.objects.get(entity=entity).next_reset_at > later


def test_switching_plans_keeps_each_entitys_usage(api, on_team, catalogue, team):
    _ok(api.post("balances.track", {**CHECK, "entity_id": "user_1", "value": 30}))
    bigger = Product.objects.create(product_id="team_plus", name="Team Plus")
    ProductItem.objects.create(
        product=bigger,
        feature=catalogue["messages"],
        included=Decimal(800),
        interval="month",
        entity_feature=catalogue["seats"],
    )
    product_attach(customer=on_team, product=bigger, actor=None, now=timezone.now())
    assert (_remaining("user_1"), _remaining("user_2")) == ([770], [800])


@pytest.mark.django_db(transaction=True)
def test_the_python_client_checks_and_tracks_an_entity(live_server, catalogue, team, sandbox_key):
    customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme Corp")
    product_attach(customer=customer, product=team, actor=None)
    with Autumn(secret_key=sandbox_key[1], server_url=live_server.url, fail_open=False) as autumn:
        autumn.entities.create(customer_id="acme_corp", entity_id="user_1", feature_id="seats", name="Ada")
        autumn.entities.create(customer_id="acme_corp", entity_id="user_2", feature_id="seats", name="Grace")

        tracked = autumn.track(customer_id="acme_corp", feature_id="messages", entity_id="user_1", value=40)
        assert (tracked.entity_id, tracked.balance.remaining) == ("user_1", 460)
        checked = autumn.check(customer_id="acme_corp", feature_id="messages", entity_id="user_2", required_balance=500)
        assert (checked.allowed, checked.entity_id, checked.balance.remaining) == (True, "user_2", 500)
        whole = autumn.check(customer_id="acme_corp", feature_id="messages", required_balance=961)
        assert (whole.allowed, whole.balance.remaining) == (False, 960)

        with pytest.raises(AutumnDefaultError) as missing:
            autumn.check(customer_id="acme_corp", feature_id="messages", entity_id="nobody")
        assert missing.value.status_code == 404
        assert '"entity_not_found"' in missing.value.body
