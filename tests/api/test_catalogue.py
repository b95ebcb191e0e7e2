"""plans.list/get, features.list/get and rewards.list: the catalogue, the same for both environments."""

from __future__ import annotations

from decimal import Decimal

from billing.models import Feature, Product, Reward
from billing.services.products import product_attach
from customers.models import AuditEntry


def test_plans_list_gives_each_plans_newest_version_with_prices_and_items(api, catalogue):
    Product.objects.create(product_id="pro", name="Pro (2027)", version=2)
    Product.objects.create(product_id="legacy", name="Legacy", archived=True)
    plans = api.post("plans.list").json()["list"]
    assert [(p["id"], p["version"]) for p in plans] == [
        ("free", 1),
        ("pro", 2),
        ("scale", 1),
        ("seats_addon", 1),
    ]
    scale = next(p for p in plans if p["id"] == "scale")
    assert scale["price"] == {"amount": 250, "interval": "month", "interval_count": 1}
    assert scale["env"] == "sandbox"
    assert (scale["description"], scale["group"], scale["base_variant_id"]) == (None, None, None)
    api_calls = next(i for i in scale["items"] if i["feature_id"] == "api_calls")
    assert api_calls["included"] == 100000
    assert api_calls["reset"] == {"interval": "month", "interval_count": 1}
    assert api_calls["price"] == {
        "amount": 1,
        "interval": "month",
        "interval_count": 1,
        "billing_units": 1000,
        "billing_method": "usage_based",
        "max_purchase": None,
    }
    assert api_calls["feature"]["type"] == "single_use"
    free = next(p for p in plans if p["id"] == "free")
    assert (free["price"], free["auto_enable"]) == (None, True)
    assert "customer_eligibility" not in free


def test_plans_list_all_versions_and_archived_on_request(api, catalogue):
    Product.objects.create(product_id="pro", name="Pro (2027)", version=2)
    Product.objects.create(product_id="legacy", name="Legacy", archived=True)
    plans = api.post("plans.list", {"all_versions": True, "include_archived": True}).json()["list"]
    assert [(p["id"], p["version"]) for p in plans] == [
        ("free", 1),
        ("legacy", 1),
        ("pro", 2),
        ("pro", 1),
        ("scale", 1),
        ("seats_addon", 1),
    ]


def test_plans_list_for_a_customer_says_what_attaching_each_would_do(api, customer, catalogue):
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    plans = {p["id"]: p for p in api.post("plans.list", {"customer_id": "acme_corp"}).json()["list"]}
    assert plans["pro"]["customer_eligibility"] == {
        "trial_available": False,
        "status": "active",
        "canceling": False,
        "trialing": False,
        "attach_action": "none",
    }
    assert plans["scale"]["customer_eligibility"]["attach_action"] == "upgrade"
    assert plans["free"]["customer_eligibility"]["attach_action"] == "downgrade"
    assert "status" not in plans["free"]["customer_eligibility"]
    assert plans["seats_addon"]["customer_eligibility"]["attach_action"] == "activate"


def test_the_catalogue_is_served_to_both_environments_but_customers_are_not(api, live_api, customer, catalogue):
    live = live_api.post("plans.list").json()["list"]
    assert [p["id"] for p in live] == [p["id"] for p in api.post("plans.list").json()["list"]]
    assert {p["env"] for p in live} == {"live"}
    refused = live_api.post("plans.list", {"customer_id": "acme_corp"})
    assert refused.status_code == 404
    assert refused.json() == {"message": "Customer acme_corp not found", "code": "customer_not_found", "env": "live"}


def test_plans_get_reads_a_version_or_the_newest(api, catalogue):
    Product.objects.create(product_id="pro", name="Pro (2027)", version=2)
    assert api.post("plans.get", {"plan_id": "pro"}).json()["name"] == "Pro (2027)"
    first = api.post("plans.get", {"plan_id": "pro", "version": 1.0}).json()
    assert (first["name"], first["version"]) == ("Pro", 1)
    assert [i["feature_id"] for i in first["items"]] == ["messages", "seats", "sso"]
    assert next(i for i in first["items"] if i["feature_id"] == "sso")["reset"] is None


def test_plans_get_refuses_unknown_plans_custom_copies_and_bad_versions(api, customer, catalogue):
    before = AuditEntry.objects.count()
    unknown = api.post("plans.get", {"plan_id": "enterprise"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "product_not_found")
    assert api.post("plans.get", {"plan_id": "pro", "version": 7}).status_code == 404
    bad = api.post("plans.get", {"plan_id": "pro", "version": 1.5})
    assert (bad.status_code, bad.json()["message"]) == (422, "version: must be a whole number")
    null = api.post("plans.get", {"plan_id": "pro", "version": None})
    assert null.status_code == 422
    assert "may not be null" in null.json()["message"]
    assert api.post("plans.list", {"all_versions": None}).status_code == 422
    assert AuditEntry.objects.count() == before


def test_features_list_and_get(api, live_api, catalogue):
    Feature.objects.filter(feature_id="seats").update(unit_label="seat")
    Feature.objects.create(feature_id="old", name="Old", type="boolean", archived=True)
    features = api.post("features.list").json()["list"]
    assert [f["id"] for f in features] == ["api_calls", "messages", "old", "seats", "sso"]
    messages = api.post("features.get", {"feature_id": "messages"}).json()
    assert messages == {
        "id": "messages",
        "name": "Messages",
        "type": "metered",
        "consumable": True,
        "event_names": ["message_sent"],
        "credit_schema": [],
        "display": {"singular": None, "plural": None},
        "archived": False,
    }
    seats = live_api.post("features.get", {"feature_id": "seats"}).json()
    assert (seats["consumable"], seats["display"]["singular"]) == (False, "seat")
    assert api.post("features.get", {"feature_id": "old"}).json()["archived"] is True
    missing = api.post("features.get", {"feature_id": "nope"})
    assert (missing.status_code, missing.json()["code"]) == (404, "feature_not_found")


def test_rewards_list_gives_active_discounts_as_coupons_and_grants(api, discount_rewards, catalogue):
    Reward.objects.filter(reward_id="twenty_off").update(promo_codes=["SPRING20"])
    Reward.objects.filter(reward_id="free_month").update(
        grant_feature=catalogue["messages"], duration="months", duration_months=1
    )
    Reward.objects.create(reward_id="free_pro", name="Free Pro", type="free_product", free_product=catalogue["pro"])
    answer = api.post("rewards.list").json()
    coupons = {c["id"]: c for c in answer["coupons"]}
    assert set(coupons) == {"twenty_off", "ten_dollars"}
    assert coupons["twenty_off"]["value"] == 20
    assert coupons["twenty_off"]["duration"] == {"type": "months", "length": 3}
    assert coupons["twenty_off"]["promo_codes"] == [
        {"code": "SPRING20", "global_max_redemption": None, "first_time_transaction": None}
    ]
    assert (coupons["ten_dollars"]["value"], coupons["ten_dollars"]["duration"]) == (
        10,
        {"type": "one_off", "length": None},
    )
    assert answer["feature_grants"] == [
        {
            "id": "free_month",
            "name": "Free month",
            "grants": [{"feature_id": "messages", "included": 100, "expiry": {"type": "month", "length": 1}}],
            "promo_codes": [],
            "created_at": answer["feature_grants"][0]["created_at"],
        }
    ]
    assert Decimal(coupons["twenty_off"]["value"]) == Decimal(20)


def test_catalogue_reads_need_a_key(anonymous_api, catalogue):
    for path in ("plans.list", "plans.get", "features.list", "features.get", "rewards.list"):
        response = anonymous_api.post(path, {"plan_id": "pro", "feature_id": "messages"})
        assert (path, response.status_code) == (path, 401)


def test_plans_list_reads_a_fixed_number_of_queries_however_many_plans(api, customer, catalogue):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.post("plans.list", {"customer_id": "acme_corp"}).status_code == 200
        return len(ctx.captured_queries)

    queries()  # the key's first use of the minute notes it: once
    before = queries()
    for n in range(5):
        plan = Product.objects.create(product_id=f"extra_{n}", name=f"Extra {n}")
        plan.items.create(feature=catalogue["messages"], included=Decimal(n))
        plan.prices.create(type="fixed", amount=100 * n, interval="month")
    assert queries() == before
