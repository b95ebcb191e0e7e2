"""Fields Autumn's SDKs send that this server does not implement yet are refused, never silently ignored:
a request that sets one is a 422 `not_supported` naming the field and saying why, and changes nothing,
on the RPC operations, the 1.2 paths and the one-round-trip check and track alike. Left out, null, or a
value that asks for what this server does anyway (with_preview false, overage_behavior "cap"), it is fine."""

from __future__ import annotations

import json

import pytest
from autumn_sdk import Autumn
from autumn_sdk.errors import AutumnDefaultError

from billing.models import Balance, Event, Product
from customers.models import AuditEntry, Customer

ACME = {"customer_id": "acme_corp"}
PLAN = {"plan_id": "team", "name": "Team"}
ATTACH = {**ACME, "plan_id": "seats_addon"}
ITEM = {"feature_id": "messages", "included": 5}
PRICE = {"amount": 1, "interval": "month", "billing_method": "usage_based"}
CHECK = {**ACME, "feature_id": "messages"}
TRACK = {**ACME, "feature_id": "messages", "value": 2}
SEAT = "seat_1"
LOCK = {"enabled": True, "lock_id": "lock_1"}
CONTROLS = {"spend_limits": [{"feature_id": "messages", "overage_limit": 10}]}

REFUSED = [
    # (path, body, the field it sets)
    ("balances.check", {**CHECK, "lock": LOCK}, "lock"),
    ("balances.check", {**CHECK, "with_preview": True}, "with_preview"),
    ("balances.track", {**TRACK, "overage_behavior": "reject"}, "overage_behavior"),
    ("balances.track", {**TRACK, "overage_behavior": "overflow"}, "overage_behavior"),
    ("balances.update", {**CHECK, "remaining": 5, "entity_id": SEAT}, "entity_id"),
    ("check", {**CHECK, "send_event": True, "with_preview": True}, "with_preview"),
    ("entitled", {**CHECK, "entity_id": SEAT, "event_data": {"a": "b"}}, "entity_id"),
    ("usage", {**CHECK, "value": 7, "entity_id": SEAT}, "entity_id"),
    ("customers.get_or_create", {**ACME, "billing_controls": CONTROLS}, "billing_controls"),
    ("customers.get_or_create", {"customer_id": "new_one", "billing_controls": CONTROLS}, "billing_controls"),
    ("customers.get_or_create", {"customer_id": "new_one", "auto_enable_plan_id": "pro"}, "auto_enable_plan_id"),
    ("customers.get_or_create", {"customer_id": "new_one", "create_in_stripe": True}, "create_in_stripe"),
    ("customers.update", {**ACME, "name": "Renamed", "billing_controls": CONTROLS}, "billing_controls"),
    ("customers.update", {**ACME, "currency": "eur"}, "currency"),
    ("customers.update", {**ACME, "stripe_id": "cus_x"}, "stripe_id"),
    ("customers.update", {**ACME, "billing_details": {"address": {}}}, "billing_details"),
    ("customers.update", {**ACME, "config": {"x": 1}}, "config"),
    ("customers", {"id": "new_one", "billing_controls": CONTROLS}, "billing_controls"),
    ("customers/acme_corp", {"name": "Renamed", "billing_controls": CONTROLS}, "billing_controls"),
    ("billing.open_customer_portal", {**ACME, "configuration_id": "bpc_1"}, "configuration_id"),
    (
        "billing.attach",
        {**ATTACH, "feature_quantities": [{"feature_id": "seats", "quantity": 3}]},
        "feature_quantities",
    ),
    ("billing.attach", {**ATTACH, "entity_id": SEAT}, "entity_id"),
    ("billing.attach", {**ATTACH, "redirect_mode": "always"}, "redirect_mode"),
    ("billing.attach", {**ATTACH, "discounts": [{"reward_id": "x"}]}, "discounts"),
    ("billing.preview_attach", {**ATTACH, "customize": {"items": []}}, "customize"),
    ("billing.update", {**ATTACH, "proration_behavior": "none"}, "proration_behavior"),
    ("billing.preview_update", {**ATTACH, "refund_last_payment": True}, "refund_last_payment"),
    ("events.list", {**ACME, "range": "7d"}, "range"),
    ("attach", {**ACME, "product_id": "seats_addon", "options": [{"feature_id": "seats", "quantity": 2}]}, "options"),
    ("attach", {**ACME, "product_id": "seats_addon", "entity_id": SEAT}, "entity_id"),
    ("attach", {**ACME, "product_id": "seats_addon", "is_custom": True, "items": []}, "is_custom"),
    ("balances.track", {**TRACK, "customer_data": {"name": "Acme"}}, "customer_data"),
    ("check", {**CHECK, "customer_data": {"name": "Acme"}}, "customer_data"),
    ("usage", {**CHECK, "value": 7, "customer_data": {"name": "Acme"}}, "customer_data"),
    ("events.list", {**ACME, "entity_id": SEAT}, "entity_id"),
    ("customers.list", {"processors": ["stripe"]}, "processors"),
    ("balances.update", {**CHECK, "remaining": 5, "expires_at": 4102444800000}, "expires_at"),
    ("features.update", {"feature_id": "messages", "display": {"singular": "msg", "plural": "msgs"}}, "display.plural"),
    ("plans.create", {**PLAN, "items": [{**ITEM, "proration": {"on_increase": "prorate"}}]}, "items.0.proration"),
    ("plans.create", {**PLAN, "items": [{**ITEM, "rollover": {"max": 5}}]}, "items.0.rollover"),
    ("plans.create", {**PLAN, "items": [{**ITEM, "pooled": True}]}, "items.0.pooled"),
    ("plans.create", {**PLAN, "items": [{**ITEM, "entity_feature_id": "seats"}]}, "items.0.entity_feature_id"),
    ("plans.create", {**PLAN, "items": [{**ITEM, "price": {**PRICE, "tiers": [{"to": 5}]}}]}, "items.0.price.tiers"),
    ("plans.create", {**PLAN, "licenses": [{"id": "x"}]}, "licenses"),
    ("plans.create", {**PLAN, "metadata": {"a": "b"}}, "metadata"),
    ("plans.update", {"plan_id": "pro", "variants": [{"id": "v"}]}, "variants"),
    ("catalog.update", {"features": [], "plans": [{**PLAN, "billing_controls": CONTROLS}]}, "plans.0.billing_controls"),
]

ACCEPTED = [
    ("balances.check", {**CHECK, "entity_id": None, "lock": None, "with_preview": False}),
    ("balances.track", {**TRACK, "entity_id": None, "overage_behavior": "cap"}),
    ("balances.track", {**TRACK, "async": True}),
    ("track", {**TRACK, "overage_behavior": "reject"}),  # the 1.2 track has it
    ("customers.get_or_create", {**ACME, "billing_controls": None, "create_in_stripe": False}),
    ("customers.update", {**ACME, "name": "Acme", "billing_controls": None, "currency": None}),
    (
        "billing.preview_attach",
        {**ATTACH, "redirect_mode": "if_required", "discounts": [], "carry_over_balances": False},
    ),
    ("events.list", {**ACME, "range": None, "entity_id": None}),
    # Past the schema to the attach's own rule: a paid plan needs Stripe.
    ("attach", {**ACME, "product_id": "seats_addon", "is_custom": False, "force_checkout": False, "options": []}, 400),
    ("plans.create", {**PLAN, "licenses": [], "metadata": {}, "items": [{**ITEM, "pooled": False, "rollover": None}]}),
]


def _state():
    return (
        list(Event.objects.order_by("id").values_list("feature__feature_id", "value")),
        list(Balance.objects.order_by("id").values_list("id", "remaining", "adjustment")),
        list(Customer.objects.order_by("id").values_list("customer_id", "name", "metadata")),
        AuditEntry.objects.count(),
        list(Product.objects.order_by("id").values_list("product_id", "version")),
    )


@pytest.mark.parametrize(("path", "body", "field"), REFUSED)
def test_a_field_not_built_here_is_refused_naming_it_and_changes_nothing(api, customer, path, body, field):
    before = _state()
    response = api.post(path, body)
    assert response.status_code == 422, response.content
    answer = response.json()
    assert answer["code"] == "not_supported"
    assert answer["message"].startswith(f"{field}: is not supported here: "), answer
    assert _state() == before


@pytest.mark.parametrize("case", ACCEPTED)
def test_left_out_null_or_what_is_done_anyway_is_accepted(api, customer, case):
    path, body, status = (*case, 200)[:3]
    response = api.post(path, body)
    assert response.status_code == status, response.content
    assert response.json().get("code") not in ("not_supported", "invalid_inputs")


def test_the_openapi_document_says_which_fields_are_not_supported(api):
    document = json.dumps(api.client.get("/v1/openapi.json").json())
    assert "Not supported here: an entity's own balances, plans and usage are not built" in document
    assert "Not supported here: billing controls" in document


@pytest.mark.django_db(transaction=True)
def test_the_python_client_is_told_what_is_not_supported(live_server, catalogue, sandbox_key):
    with Autumn(secret_key=sandbox_key[1], server_url=live_server.url, fail_open=False) as autumn:
        autumn.customers.get_or_create(customer_id="user_1")
        calls = {
            "entity_id": lambda: autumn.balances.update(
                customer_id="user_1", feature_id="messages", remaining=5, entity_id=SEAT
            ),
            "lock": lambda: autumn.check(customer_id="user_1", feature_id="messages", lock=LOCK),
            "with_preview": lambda: autumn.check(customer_id="user_1", feature_id="messages", with_preview=True),
            "overage_behavior": lambda: autumn.track(
                customer_id="user_1", feature_id="messages", value=1, overage_behavior="overflow"
            ),
            "billing_controls": lambda: autumn.customers.update(customer_id="user_1", billing_controls=CONTROLS),
        }
        calls["feature_quantities"] = lambda: autumn.billing.attach(
            customer_id="user_1", plan_id="seats_addon", feature_quantities=[{"feature_id": "seats", "quantity": 3}]
        )
        for field, call in calls.items():
            with pytest.raises(AutumnDefaultError) as refused:
                call()
            assert refused.value.status_code == 422
            body = json.loads(refused.value.body)
            assert body["code"] == "not_supported"
            assert body["message"].startswith(f"{field.strip()}: is not supported here")
    assert not Event.objects.exists()
