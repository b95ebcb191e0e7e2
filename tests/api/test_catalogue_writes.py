"""The catalogue from code over HTTP: features.*, plans.*, catalog.preview_update/update. Secret keys only,
audited with the key, bad input a 4xx naming the field with nothing changed, and Autumn's versioning rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import CreditCost, CustomerProduct, Feature, Price, Product
from billing.services.products import product_attach
from customers.models import AuditEntry
from customers.services.api_keys import api_key_revoke
from customers.services.customers import customer_create


def _snapshot() -> dict:
    """Every row of the catalogue, to prove a refusal changed nothing."""
    return {
        "features": sorted(Feature.objects.values_list("feature_id", "name", "type", "usage_type", "archived")),
        "products": sorted(Product.objects.values_list("product_id", "version", "name", "archived", "is_default")),
        "items": sorted(
            Product.objects.values_list("product_id", "version", "items__feature__feature_id", "items__included")
        ),
        "prices": sorted(Price.objects.values_list("product__product_id", "type", "amount", "interval")),
        "credit": sorted(CreditCost.objects.values_list("credit_system_id", "metered_feature_id", "credit_cost")),
        "audit": AuditEntry.objects.count(),
    }


SCALE_LIKE = {
    "plan_id": "team",
    "name": "Team",
    "group": "main",
    "price": {"amount": 49.5, "interval": "month"},
    "items": [
        {"feature_id": "sso"},
        {"feature_id": "seats", "included": 5},
        {
            "feature_id": "api_calls",
            "included": 10000,
            "reset": {"interval": "month"},
            "price": {
                "amount": 2,
                "interval": "month",
                "billing_units": 1000,
                "billing_method": "usage_based",
                "max_purchase": 90000,
            },
        },
    ],
}


def test_features_are_created_updated_and_deleted_with_the_key_as_actor(api, sandbox_key, catalogue):
    created = api.post(
        "features.create",
        {"feature_id": "words", "name": "Words", "type": "metered", "consumable": False, "event_names": ["w"]},
    )
    assert created.status_code == 200, created.content
    assert created.json() | {"display": None} == {
        "id": "words",
        "name": "Words",
        "type": "metered",
        "consumable": False,
        "event_names": ["w"],
        "credit_schema": [],
        "display": None,
        "archived": False,
    }
    credits = api.post(
        "features.create",
        {
            "feature_id": "credits",
            "name": "Credits",
            "type": "credit_system",
            "credit_schema": [{"metered_feature_id": "messages", "credit_cost": 0.25}],
        },
    ).json()
    assert credits["credit_schema"] == [{"metered_feature_id": "messages", "credit_cost": 0.25}]
    assert CreditCost.objects.get(credit_system__feature_id="credits").credit_cost == Decimal("0.25")

    changed = api.post(
        "features.update",
        {"feature_id": "credits", "credit_schema": [{"metered_feature_id": "api_calls", "credit_cost": 3}]},
    ).json()
    assert changed["credit_schema"] == [{"metered_feature_id": "api_calls", "credit_cost": 3}]
    renamed = api.post("features.update", {"feature_id": "words", "new_feature_id": "tokens", "name": "Tokens"})
    assert (renamed.status_code, renamed.json()["id"], renamed.json()["name"]) == (200, "tokens", "Tokens")

    assert api.post("features.delete", {"feature_id": "tokens"}).json() == {"success": True}
    assert not Feature.objects.filter(feature_id__in=["words", "tokens"]).exists()

    actions = list(
        AuditEntry.objects.filter(actor_api_key=sandbox_key[0], target_type="feature")
        .order_by("id")
        .values_list("action", "target_id", "env")
    )
    assert actions[:3] == [
        ("feature.create", "words", "sandbox"),
        ("feature.create", "credits", "sandbox"),
        ("feature.update", "credits", "sandbox"),
    ]
    assert actions[-1] == ("feature.delete", "tokens", "sandbox")


def test_a_feature_in_use_keeps_its_type_and_is_not_deleted(api, customer):
    before = _snapshot()
    retype = api.post("features.update", {"feature_id": "messages", "type": "boolean"})
    assert retype.status_code == 409
    assert retype.json()["message"].startswith("features[0].type: messages is in use")
    deleted = api.post("features.delete", {"feature_id": "messages"})
    assert (deleted.status_code, deleted.json()["code"]) == (409, "feature_in_use")
    assert _snapshot() == before


def test_a_plan_is_created_with_its_price_items_overage_and_usage_limit(api, catalogue):
    answer = api.post("plans.create", SCALE_LIKE)
    assert answer.status_code == 200, answer.content
    plan = answer.json()
    assert (plan["id"], plan["version"], plan["group"], plan["price"]["amount"]) == ("team", 1, "main", 49.5)
    items = {i["feature_id"]: i for i in plan["items"]}
    assert items["sso"]["reset"] is None and items["seats"]["included"] == 5
    assert items["api_calls"]["price"] | {"interval_count": 1} == {
        "amount": 2,
        "interval": "month",
        "interval_count": 1,
        "billing_units": 1000,
        "billing_method": "usage_based",
        "max_purchase": 90000,
    }
    product = Product.objects.get(product_id="team")
    api_calls = product.items.get(feature__feature_id="api_calls")
    assert (api_calls.overage_allowed, api_calls.usage_limit, api_calls.interval) == (True, 100000, "month")
    assert sorted(product.prices.values_list("type", "amount", "billing_units")) == [
        ("fixed", 4950, Decimal(1)),
        ("usage", 200, Decimal(1000)),
    ]
    assert api.post("plans.get", {"plan_id": "team"}).json() == plan


def test_a_plan_without_customers_changes_in_place_and_one_with_customers_gets_a_new_version(
    api, sandbox_key, customer, catalogue
):
    api.post("plans.create", SCALE_LIKE)
    in_place = api.post("plans.update", {"plan_id": "team", "price": {"amount": 59, "interval": "month"}}).json()
    assert in_place["version"] == 1 and in_place["price"]["amount"] == 59

    team = Product.objects.get(product_id="team")
    product_attach(customer=customer, product=team, actor=None)
    renamed = api.post("plans.update", {"plan_id": "team", "name": "Team (2026)"}).json()
    assert (renamed["version"], renamed["name"]) == (1, "Team (2026)")  # a name is not what they get

    preview = api.post(
        "catalog.preview_update",
        {"plans": [{**SCALE_LIKE, "name": "Team (2026)", "items": SCALE_LIKE["items"][:2]}]},
    ).json()
    [change] = preview["plan_changes"]
    assert (change["action"], change["versionable"], change["customer_count"]) == ("updated", True, 1)
    assert change["item_changes"] == [{"feature_id": "api_calls", "action": "removed"}]

    versioned = api.post("plans.update", {"plan_id": "team", "items": SCALE_LIKE["items"][:2]}).json()
    assert versioned["version"] == 2 and [i["feature_id"] for i in versioned["items"]] == ["sso", "seats"]
    v1 = Product.objects.get(product_id="team", version=1)
    assert v1.items.count() == 3 and CustomerProduct.objects.get(customer=customer, product=v1)
    assert api.post("plans.list", {}).json()["list"][-1]["version"] == 2  # the newest is what's offered
    entry = AuditEntry.objects.get(actor_api_key=sandbox_key[0], action="plan.version")
    assert entry.before["version"] == 1 and entry.after["version"] == 2

    archived = api.post("plans.update", {"plan_id": "team", "archived": True}).json()
    assert (archived["version"], archived["archived"]) == (2, True)  # in place: archiving changes nobody's plan
    assert "team" not in [p["id"] for p in api.post("plans.list", {}).json()["list"]]
    everything = api.post("plans.list", {"include_archived": True, "all_versions": True}).json()["list"]
    assert [(p["version"], p["archived"]) for p in everything if p["id"] == "team"] == [(2, True), (1, True)]


def test_the_default_plan_versioned_gives_new_customers_the_newest_only(api, customer):
    preview = api.post(
        "catalog.preview_update",
        {
            "plans": [
                {
                    "plan_id": "free",
                    "name": "Free",
                    "auto_enable": True,
                    "items": [{"feature_id": "messages", "included": 200, "reset": {"interval": "month"}}],
                }
            ]
        },
    ).json()
    assert preview["plan_changes"][0]["versionable"] is True
    api.post(
        "plans.update",
        {"plan_id": "free", "items": [{"feature_id": "messages", "included": 200, "reset": {"interval": "month"}}]},
    )
    newcomer = customer_create(env="sandbox", customer_id="newcomer", actor=None)
    held = CustomerProduct.objects.filter(customer=newcomer).values_list("product__version", flat=True)
    assert list(held) == [2]
    assert customer.balances.get().allowance == 100  # acme keeps v1's 100 messages


def test_a_preview_counts_only_the_keys_environment_but_versions_for_either(api, live_api, globex, catalogue):
    body = {"plans": [{"plan_id": "free", "name": "Free", "auto_enable": True, "items": []}]}
    [sandbox_view] = api.post("catalog.preview_update", body).json()["plan_changes"]
    [live_view] = live_api.post("catalog.preview_update", body).json()["plan_changes"]
    assert (sandbox_view["customer_count"], sandbox_view["has_customers"], sandbox_view["versionable"]) == (
        0,
        False,
        True,
    )
    assert (live_view["customer_count"], live_view["versionable"]) == (1, True)


def test_catalog_update_applies_all_or_nothing_and_names_the_bad_field(api, catalogue):
    before = _snapshot()
    body = {
        "features": [{"feature_id": "exports", "name": "Exports", "type": "metered", "consumable": True}],
        "plans": [
            {
                "plan_id": "team",
                "name": "Team",
                "items": [{"feature_id": "exports", "included": 3, "reset": {"interval": "month"}}],
            },
            {"plan_id": "solo", "name": "Solo", "items": [{"feature_id": "nope", "included": 1}]},
        ],
    }
    refused = api.post("catalog.update", body)
    assert refused.status_code == 422
    assert refused.json()["message"] == "plans[1].items[0].feature_id: there is no feature nope"
    assert _snapshot() == before

    body["plans"][1]["items"][0]["feature_id"] = "exports"
    applied = api.post("catalog.update", body)
    assert applied.status_code == 200, applied.content
    assert sorted(p["id"] for p in applied.json()["plans"]) == ["solo", "team"]
    assert [f["id"] for f in applied.json()["features"]] == ["exports"]
    again = api.post("catalog.preview_update", body).json()
    assert {c["action"] for c in again["plan_changes"] + again["feature_changes"]} == {"none"}


def test_catalog_update_with_skip_deletions_false_removes_what_it_leaves_out(api, customer, catalogue):
    pulled = {
        "features": [f for f in api.post("features.list", {}).json()["list"] if f["id"] != "api_calls"],
        "plans": [],
        "skip_deletions": False,
    }
    for f in pulled["features"]:
        f["feature_id"] = f.pop("id")
    preview = api.post("catalog.preview_update", pulled).json()
    plans = {c["plan_id"]: (c["action"], c["will_archive"]) for c in preview["plan_changes"]}
    assert plans == {
        "free": ("deleted", True),  # acme is on it: archived
        "pro": ("deleted", False),
        "scale": ("deleted", False),
        "seats_addon": ("deleted", False),
    }
    features = {c["feature_id"]: (c["action"], c["will_archive"]) for c in preview["feature_changes"]}
    assert features["api_calls"] == ("remove", True)  # still in Scale's items and prices until then
    assert api.post("catalog.update", pulled).status_code == 200
    assert Product.objects.get(product_id="free").archived is True
    assert not Product.objects.filter(product_id="pro").exists()
    assert Feature.objects.get(feature_id="api_calls").archived is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"plan_id": "x", "name": "X", "free_trial": {"duration_length": 7, "duration_type": "week"}},
            "free_trial.duration_type: must be one of",
        ),
        ({"plan_id": "x", "name": "X", "price": {"amount": 1.005, "interval": "month"}}, "price.amount: USD amounts"),
        ({"plan_id": "x", "name": "X", "price": {"amount": 5, "interval": "week"}}, "price.interval: must be one of"),
        ({"plan_id": "x", "name": "X", "items": [{"feature_id": "sso", "included": 3}]}, "items[0]: sso is a boolean"),
        (
            {
                "plan_id": "x",
                "name": "X",
                "items": [
                    {"feature_id": "messages", "price": {"amount": 1, "interval": "month", "billing_method": "prepaid"}}
                ],
            },
            "items[0].price.billing_method: only usage_based",
        ),
        ({"plan_id": "x", "name": "X", "items": [{"feature_id": "messages", "included": "10"}]}, "items.0.included"),
        ({"plan_id": "bad id", "name": "X"}, "plan_id: must be 1 to 255 letters"),
        ({"plan_id": "x", "name": " "}, "name: is required"),
        ({"plan_id": "pro", "name": "Pro again"}, "plan_id: plan pro already exists"),
    ],
)
def test_bad_plans_are_refused_naming_the_field_and_change_nothing(api, catalogue, body, message):
    before = _snapshot()
    answer = api.post("plans.create", body)
    assert 400 <= answer.status_code < 500
    assert message in answer.json()["message"]
    assert _snapshot() == before


def test_a_plan_customers_are_on_is_neither_deleted_nor_changed_in_place(api, customer):
    before = _snapshot()
    refused = api.post("plans.delete", {"plan_id": "free"})
    assert (refused.status_code, refused.json()["code"]) == (409, "plan_has_customers")
    in_place = api.post("plans.update", {"plan_id": "free", "items": [], "disable_version": True})
    assert in_place.status_code == 409 and "disable_version" in in_place.json()["message"]
    assert _snapshot() == before
    assert api.post("plans.delete", {"plan_id": "pro"}).json() == {"success": True}


def test_rewards_are_compared_not_written_and_a_changed_one_is_refused(api, catalogue):
    from billing.models import Reward

    Reward.objects.create(reward_id="spring", name="Spring", type="percentage_discount", value=20, promo_codes=["S"])
    [ours] = api.post("rewards.list", {}).json()["coupons"]
    same = api.post("catalog.preview_update", {"rewards": [{"coupon": ours}]}).json()
    assert same["reward_changes"] == [{"id": "spring", "action": "none"}]
    refused = api.post("catalog.update", {"rewards": [{"coupon": {**ours, "value": 25}}]})
    assert refused.status_code == 422 and refused.json()["message"].startswith(
        "rewards: reward spring would be updated"
    )
    assert Reward.objects.get().value == 20


WRITES = [
    ("features.create", {"feature_id": "f", "name": "F", "type": "boolean"}),
    ("features.update", {"feature_id": "sso", "name": "S"}),
    ("features.delete", {"feature_id": "sso"}),
    ("plans.create", {"plan_id": "p", "name": "P"}),
    ("plans.update", {"plan_id": "pro", "name": "P"}),
    ("plans.delete", {"plan_id": "pro"}),
    ("catalog.update", {"plans": [{"plan_id": "p", "name": "P"}]}),
    ("catalog.preview_update", {}),
]


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_catalogue_writes_need_a_secret_key(client, anonymous_api, sandbox_key, ops, catalogue, path, body):
    from tests.api.conftest import ApiClient

    publishable = ApiClient(client, "am_pk_test_" + "x" * 40)
    revoked_key, revoked_raw = sandbox_key
    api_key_revoke(api_key=revoked_key, actor=ops)
    before = _snapshot()
    for caller in (anonymous_api, publishable, ApiClient(client, revoked_raw)):
        answer = caller.post(path, body)
        assert answer.status_code == 401, (path, answer.content)
    assert _snapshot() == before


def test_organization_names_the_keys_environment(api, live_api):
    assert api.get("organization/me").json() | {"created_at": 0} == {
        "id": "billing-admin",
        "name": "Billing admin",
        "slug": "billing-admin",
        "env": "sandbox",
        "created_at": 0,
        "default_currency": "usd",
        "stripe_connection": "none",
    }
    assert live_api.get("organization").json()["env"] == "live"


def test_offset_lists_show_only_the_keys_environment(api, customer, globex):
    listed = api.post("customers/list", {"limit": 10, "offset": 0}).json()
    assert [c["id"] for c in listed["list"]] == ["acme_corp"] and listed["has_more"] is False
    events = api.post("events/list", {"limit": 10}).json()
    assert (events["list"], events["total"], events["has_more"]) == ([], 0, False)
    assert api.post("referral_programs.list", {}).json() == {"list": []}
