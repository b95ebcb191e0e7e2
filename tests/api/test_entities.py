"""entities.create/get/list/update/delete: a customer's seats or workspaces, each using one unit of its feature
while it exists (drawn and given back by the balance engine), in Autumn's shapes, within the key's environment."""

from __future__ import annotations

from decimal import Decimal

import pytest
from autumn_sdk import Autumn
from autumn_sdk.errors import AutumnDefaultError

from billing.models import Balance, Entity, Event
from billing.services.balances import balance_create
from billing.services.products import product_attach
from customers.models import AuditEntry
from customers.services.customers import customer_create


def _ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def _seats_left(customer, catalogue) -> Decimal:
    return sum(b.remaining for b in Balance.objects.filter(customer=customer, feature=catalogue["seats"]))


@pytest.fixture
def on_pro(customer, catalogue):
    """Acme Corp on Pro: 10 seats."""
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    return customer


def _create(api, entity_id="user_1", **extra):
    body = {"customer_id": "acme_corp", "entity_id": entity_id, "feature_id": "seats", "name": "Ada", **extra}
    return api.post("entities.create", body)


def test_creating_an_entity_uses_a_seat_and_answers_it_in_autumns_shape(api, on_pro, catalogue):
    answer = _ok(_create(api))

    assert (answer["id"], answer["name"], answer["customer_id"], answer["feature_id"], answer["env"]) == (
        "user_1",
        "Ada",
        "acme_corp",
        "seats",
        "sandbox",
    )
    assert isinstance(answer["created_at"], int)
    assert [s["plan_id"] for s in answer["subscriptions"]] == ["pro"]
    assert answer["balances"]["seats"]["remaining"] == 9
    assert answer["balances"]["seats"]["usage"] == 1
    assert _seats_left(on_pro, catalogue) == 9
    entity = Entity.objects.get()
    assert (entity.customer, entity.entity_id, entity.feature, entity.deleted_at) == (
        on_pro,
        "user_1",
        catalogue["seats"],
        None,
    )
    event = Event.objects.get(feature=catalogue["seats"])
    assert (event.value, event.properties) == (1, {"entity_id": "user_1"})
    entry = AuditEntry.objects.get(action="entity.create")
    assert (entry.target_id, entry.env, entry.actor_api_key is not None) == ("user_1", "sandbox", True)
    assert entry.after == {"entity_id": "user_1", "name": "Ada", "feature": "seats"}


def test_deleting_an_entity_gives_its_seat_back(api, on_pro, catalogue):
    _ok(_create(api, "user_1"))
    _ok(_create(api, "user_2"))
    assert _seats_left(on_pro, catalogue) == 8

    assert _ok(api.post("entities.delete", {"customer_id": "acme_corp", "entity_id": "user_1"})) == {"success": True}

    assert _seats_left(on_pro, catalogue) == 9
    assert Entity.objects.get(entity_id="user_1").deleted_at is not None
    assert api.post("entities.get", {"customer_id": "acme_corp", "entity_id": "user_1"}).status_code == 404
    assert AuditEntry.objects.get(action="entity.delete").before["entity_id"] == "user_1"
    again = api.post("entities.delete", {"customer_id": "acme_corp", "entity_id": "user_1"})
    assert (again.status_code, again.json()["code"]) == (404, "entity_not_found")
    assert _seats_left(on_pro, catalogue) == 9


def test_an_entity_beyond_the_last_seat_is_refused_and_nothing_is_stored(api, customer, catalogue):
    balance_create(customer=customer, feature=catalogue["seats"], actor=None, reason="Two seats", granted=2)
    _ok(_create(api, "user_1"))
    _ok(_create(api, "user_2"))

    refused = _create(api, "user_3")

    assert refused.status_code == 400
    assert refused.json()["code"] == "feature_limit_reached"
    assert "no Seats left" in refused.json()["message"]
    assert list(Entity.objects.values_list("entity_id", flat=True).order_by("entity_id")) == ["user_1", "user_2"]
    assert _seats_left(customer, catalogue) == 0
    assert AuditEntry.objects.filter(action="entity.create").count() == 2


def test_a_seat_balance_with_overage_lets_entities_go_beyond_it(api, customer, catalogue):
    balance_create(
        customer=customer, feature=catalogue["seats"], actor=None, reason="One seat", granted=1, overage_allowed=True
    )
    _ok(_create(api, "user_1"))

    answer = _ok(_create(api, "user_2"))

    assert answer["balances"]["seats"]["usage"] == 2
    assert _seats_left(customer, catalogue) == -1


def test_a_customer_without_any_seat_balance_may_still_have_entities(api, customer, catalogue):
    answer = _ok(_create(api, "workspace_1", feature_id="seats"))

    assert answer["id"] == "workspace_1"
    assert "seats" not in answer["balances"]
    assert not Event.objects.filter(feature=catalogue["seats"]).exists()


def test_an_entity_id_in_use_is_a_409_and_free_again_once_deleted(api, on_pro, catalogue):
    _ok(_create(api, "user_1"))

    duplicate = _create(api, "user_1", name="Other")

    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "entity_already_exists")
    assert Entity.objects.count() == 1
    assert _seats_left(on_pro, catalogue) == 9
    _ok(api.post("entities.delete", {"customer_id": "acme_corp", "entity_id": "user_1"}))
    assert _ok(_create(api, "user_1", name="Again"))["name"] == "Again"


def test_a_consumable_feature_cannot_count_entities(api, on_pro, catalogue):
    refused = _create(api, feature_id="messages")

    assert refused.status_code == 400
    assert "consumable" in refused.json()["message"]
    assert not Entity.objects.exists()


def test_an_unknown_customer_or_feature_is_a_404(api, customer, catalogue):
    cases = [
        ("entities.create", {"customer_id": "nobody", "entity_id": "u1", "feature_id": "seats"}, "customer_not_found"),
        ("entities.create", {"customer_id": "acme_corp", "entity_id": "u1", "feature_id": "nope"}, "feature_not_found"),
        ("entities.get", {"customer_id": "nobody", "entity_id": "u1"}, "customer_not_found"),
        ("entities.get", {"customer_id": "acme_corp", "entity_id": "u1"}, "entity_not_found"),
        ("entities.update", {"entity_id": "u1"}, "entity_not_found"),
        ("entities.delete", {"customer_id": "nobody", "entity_id": "u1"}, "customer_not_found"),
        ("entities.list", {"customer_id": "nobody"}, "customer_not_found"),
    ]
    for path, body, code in cases:
        response = api.post(path, body)
        assert (response.status_code, response.json()["code"]) == (404, code), (path, body)
    assert not Entity.objects.exists()


def test_sandbox_and_live_entities_never_meet(api, live_api, on_pro, globex, catalogue):
    _ok(_create(api, "user_1"))
    product_attach(customer=globex, product=catalogue["pro"], actor=None)

    assert live_api.post("entities.get", {"entity_id": "user_1"}).status_code == 404
    assert live_api.post("entities.get", {"customer_id": "acme_corp", "entity_id": "user_1"}).status_code == 404
    assert live_api.post("entities.delete", {"entity_id": "user_1"}).status_code == 404
    assert _ok(live_api.post("entities.list", {}))["list"] == []
    live = _ok(
        live_api.post("entities.create", {"customer_id": "globex", "entity_id": "user_1", "feature_id": "seats"})
    )
    assert (live["env"], live["customer_id"]) == ("live", "globex")
    assert [e["customer_id"] for e in _ok(api.post("entities.list", {}))["list"]] == ["acme_corp"]
    assert _seats_left(on_pro, catalogue) == 9
    assert _seats_left(globex, catalogue) == 9


def test_get_without_customer_id_finds_the_one_customer_with_that_entity(api, on_pro, other_customer, catalogue):
    _ok(_create(api, "user_1"))
    assert _ok(api.post("entities.get", {"entity_id": "user_1"}))["customer_id"] == "acme_corp"

    _ok(api.post("entities.create", {"customer_id": "globex", "entity_id": "user_1", "feature_id": "seats"}))
    ambiguous = api.post("entities.get", {"entity_id": "user_1"})

    assert (ambiguous.status_code, ambiguous.json()["code"]) == (400, "entity_id_required")
    assert _ok(api.post("entities.get", {"customer_id": "globex", "entity_id": "user_1"}))["customer_id"] == "globex"


def test_list_pages_newest_first_and_filters_by_customer_and_search(api, on_pro, other_customer, catalogue):
    for n in range(5):
        _ok(_create(api, f"user_{n}", name=f"Person {n}"))
    _ok(api.post("entities.create", {"customer_id": "globex", "entity_id": "g_1", "feature_id": "seats"}))

    first = _ok(api.post("entities.list", {"customer_id": "acme_corp", "limit": 2}))
    second = _ok(
        api.post("entities.list", {"customer_id": "acme_corp", "limit": 2, "start_cursor": first["next_cursor"]})
    )
    third = _ok(
        api.post("entities.list", {"customer_id": "acme_corp", "limit": 2, "start_cursor": second["next_cursor"]})
    )

    ids = [e["id"] for page in (first, second, third) for e in page["list"]]
    assert ids == ["user_4", "user_3", "user_2", "user_1", "user_0"]
    assert third["next_cursor"] is None
    assert {e["customer_id"] for e in _ok(api.post("entities.list", {}))["list"]} == {"acme_corp", "globex"}
    assert [e["id"] for e in _ok(api.post("entities.list", {"search": "person 3"}))["list"]] == ["user_3"]
    on_pro_plan = _ok(api.post("entities.list", {"plans": [{"id": "pro"}]}))["list"]
    assert {e["customer_id"] for e in on_pro_plan} == {"acme_corp"}
    assert api.post("entities.list", {"start_cursor": "garbage"}).status_code == 400


def test_fields_not_built_are_refused_by_name(api, on_pro, catalogue):
    controls = {"spend_limits": [{"feature_id": "seats", "enabled": True, "overage_limit": 5}]}
    cases = [
        (
            "entities.create",
            {"customer_id": "acme_corp", "entity_id": "u1", "feature_id": "seats", "billing_controls": controls},
        ),
        (
            "entities.create",
            {"customer_id": "acme_corp", "entity_id": "u1", "feature_id": "seats", "customer_data": {"name": "A"}},
        ),
        ("entities.update", {"customer_id": "acme_corp", "entity_id": "u1", "billing_controls": controls}),
        ("entities.list", {"processors": ["stripe"]}),
    ]
    for path, body in cases:
        response = api.post(path, body)
        assert (response.status_code, response.json()["code"]) == (422, "not_supported"), (path, response.json())
    assert not Entity.objects.exists()


def test_update_without_billing_controls_answers_the_entity(api, on_pro, catalogue):
    created = _ok(_create(api, "user_1"))

    assert _ok(api.post("entities.update", {"entity_id": "user_1"})) == created


def test_customers_get_expands_entities(api, on_pro, catalogue):
    _ok(_create(api, "user_1"))
    _ok(_create(api, "user_2", name=None))
    _ok(api.post("entities.delete", {"customer_id": "acme_corp", "entity_id": "user_2"}))

    answer = _ok(api.post("customers.get", {"customer_id": "acme_corp", "expand": ["entities"]}))

    assert [(e["id"], e["name"], e["feature_id"], e["customer_id"], e["env"]) for e in answer["entities"]] == [
        ("user_1", "Ada", "seats", "acme_corp", "sandbox")
    ]
    assert "entities" not in _ok(api.post("customers.get", {"customer_id": "acme_corp"}))


def test_a_bad_entity_id_is_refused_before_anything_is_read(api, on_pro):
    for bad in ["", "a b", "é" * 3, "x" * 256, 5]:
        response = _create(api, bad)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_inputs"), bad
    assert _create(api, "x\u0000y").status_code == 400  # the API's JSON reader refuses a NUL anywhere
    assert not Entity.objects.exists()


# --- Autumn's Python client against a running server ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_python_client_creates_lists_gets_updates_and_deletes_entities(live_server, catalogue, sandbox_key):
    customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme Corp")
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    with Autumn(secret_key=sandbox_key[1], server_url=live_server.url, fail_open=False) as autumn:
        created = autumn.entities.create(customer_id="acme_corp", entity_id="user_1", feature_id="seats", name="Ada")
        assert (created.id, created.name, created.customer_id, created.feature_id, created.env) == (
            "user_1",
            "Ada",
            "acme_corp",
            "seats",
            "sandbox",
        )
        assert created.balances["seats"].remaining == 9
        autumn.entities.create(customer_id="acme_corp", entity_id="user_2", feature_id="seats")

        listed = autumn.entities.list(customer_id="acme_corp", limit=1)
        assert [e.id for e in listed.list] == ["user_2"]
        rest = autumn.entities.list(customer_id="acme_corp", limit=1, start_cursor=listed.next_cursor)
        assert ([e.id for e in rest.list], rest.next_cursor) == (["user_1"], None)
        assert autumn.entities.get(entity_id="user_1").name == "Ada"
        assert autumn.entities.update(customer_id="acme_corp", entity_id="user_1").id == "user_1"
        fetched = autumn.customers.get(customer_id="acme_corp", expand=["entities"])
        assert sorted(e.id for e in fetched.entities) == ["user_1", "user_2"]

        assert autumn.entities.delete(customer_id="acme_corp", entity_id="user_1").success is True
        with pytest.raises(AutumnDefaultError) as missing:
            autumn.entities.get(customer_id="acme_corp", entity_id="user_1")
        assert missing.value.status_code == 404
    assert _seats_left(customer, catalogue) == 9
