"""A nested request object is a JSON object, strictly like every other field: sent as a string, a number
or a list it is a 422 invalid_inputs naming it, and nothing is read or changed, never an empty object that
filters nothing or clears a setting."""

from __future__ import annotations

import copy
import inspect
import typing

import pytest

from autumn_admin.api.schemas import (
    balances,
    billing,
    catalogue,
    catalogue_sync,
    customers,
    entities,
    events,
    invoices,
    legacy,
    referrals,
    rewards,
)
from autumn_admin.api.schemas.common import Params
from billing.models import Event, Feature, Product

PLAN = {"plan_id": "team", "name": "Team"}
WITH_ITEM = {**PLAN, "items": [{"feature_id": "messages", "included": 5}]}
WORDS = {"feature_id": "words", "name": "W", "type": "metered", "consumable": True}
POOL = {"feature_id": "pool", "name": "P", "type": "credit_system"}
GRANT = {"customer_id": "acme_corp", "feature_id": "api_calls", "included_grant": 5}
COUPON = {"id": "c1", "name": "C", "type": "percentage_discount", "value": 10}
GRANT_REWARD = {"id": "g1", "name": "G", "grants": [{"feature_id": "messages", "included": 5}]}
# (model, field): the request, and where the bad value goes in it.
CASES = {
    ("ListEventsParams", "custom_range"): ("events.list", {"customer_id": "acme_corp"}, "custom_range"),
    ("AggregateEventsParams", "custom_range"): ("events.aggregate", {"feature_id": "messages"}, "custom_range"),
    ("UpdateFeatureParams", "display"): ("features.update", {"feature_id": "messages"}, "display"),
    ("CreateFeatureParams", "display"): (
        "features.create",
        {"feature_id": "words", "name": "W", "type": "metered", "consumable": True},
        "display",
    ),
    ("CreateFeatureParams", "credit_schema"): (
        "features.create",
        {"feature_id": "pool", "name": "P", "type": "credit_system"},
        "credit_schema.0",
    ),
    ("CreateBalanceParams", "reset"): (
        "balances.create",
        {"customer_id": "acme_corp", "feature_id": "api_calls", "included_grant": 5},
        "reset",
    ),
    ("CreatePlanParams", "price"): ("plans.create", PLAN, "price"),
    ("CreatePlanParams", "free_trial"): ("plans.create", PLAN, "free_trial"),
    ("CreatePlanParams", "items"): ("plans.create", PLAN, "items.0"),
    ("PlanItemIn", "reset"): (
        "plans.create",
        WITH_ITEM,
        "items.0.reset",
    ),
    ("PlanItemIn", "price"): (
        "plans.create",
        WITH_ITEM,
        "items.0.price",
    ),
    ("ListCustomersParams", "plans"): ("customers.list", {}, "plans.0"),
    ("ListEntitiesParams", "plans"): ("entities.list", {}, "plans.0"),
    ("CatalogUpdateParams", "features"): ("catalog.update", {"plans": []}, "features.0"),
    ("CatalogUpdateParams", "plans"): ("catalog.update", {"features": []}, "plans.0"),
    ("CreateRewardParams", "coupon"): ("rewards.create", {}, "coupon"),
    ("IssueCreditNoteParams", "lines"): ("invoices.issue_credit_note", {"invoice_id": "inv_1"}, "lines.0"),
    ("CreateRewardParams", "feature_grant"): ("rewards.create", {}, "feature_grant"),
    ("CouponIn", "duration"): ("rewards.create", {"coupon": COUPON}, "coupon.duration"),
    ("CouponIn", "promo_codes"): (
        "rewards.create",
        {"coupon": {**COUPON, "duration": {"type": "forever"}}},
        "coupon.promo_codes.0",
    ),
    ("FeatureGrantIn", "grants"): (
        "rewards.create",
        {"feature_grant": {"id": "g1", "name": "G"}},
        "feature_grant.grants.0",
    ),
    ("FeatureGrantIn", "promo_codes"): (
        "rewards.create",
        {"feature_grant": GRANT_REWARD},
        "feature_grant.promo_codes.0",
    ),
    ("GrantIn", "expiry"): ("rewards.create", {"feature_grant": GRANT_REWARD}, "feature_grant.grants.0.expiry"),
    ("UpdateRewardParams", "coupon"): ("rewards.update", {"reward_id": "r1"}, "coupon"),
    ("UpdateRewardParams", "feature_grant"): ("rewards.update", {"reward_id": "r1"}, "feature_grant"),
    ("UpdateCouponIn", "promo_codes"): ("rewards.update", {"reward_id": "r1", "coupon": {}}, "coupon.promo_codes.0"),
    ("UpdateFeatureGrantIn", "promo_codes"): (
        "rewards.update",
        {"reward_id": "r1", "feature_grant": {}},
        "feature_grant.promo_codes.0",
    ),
}


def _set(body: dict, where: str, value) -> dict:
    """`body` with `value` at `where` ("items.0.reset"), the lists and objects on the way made as needed."""
    body = copy.deepcopy(body)
    *parents, last = where.split(".")
    node = body
    for n, part in enumerate(parents):
        after = [*parents, last][n + 1]
        key = int(part) if isinstance(node, list) else part
        if isinstance(node, list) and len(node) <= key:
            node.append([] if after.isdigit() else {})
        elif not isinstance(node, list) and key not in node:
            node[key] = [] if after.isdigit() else {}
        node = node[key]
    if isinstance(node, list):
        node.append(value)
    else:
        node[last] = value
    return body


def _nested_object_fields() -> set[tuple[str, str]]:
    """Every request field that holds an object of its own (or a list of them), read from the schemas."""
    found = set()
    for module in (
        balances,
        billing,
        catalogue,
        catalogue_sync,
        customers,
        entities,
        events,
        invoices,
        legacy,
        referrals,  # flat: no nested request object yet
        rewards,
    ):
        for name, model in vars(module).items():
            if not (inspect.isclass(model) and issubclass(model, Params)) or model.__module__ != module.__name__:
                continue
            for field, info in model.model_fields.items():
                args = [info.annotation, *typing.get_args(info.annotation)]
                args += [a for arg in args for a in typing.get_args(arg)]
                if any(inspect.isclass(a) and issubclass(a, Params) for a in args):
                    found.add((name, field))
    return found


def test_every_nested_object_field_is_tested_here():
    inherited = {
        ("FeatureFieldsIn", "display"),
        ("FeatureFieldsIn", "credit_schema"),
        ("UpdateFeatureParams", "credit_schema"),
    }
    inherited |= {
        (m, f) for m in ("PlanFieldsIn", "UpdatePlanParams", "CatalogPlanIn") for f in ("price", "items", "free_trial")
    }
    assert _nested_object_fields() - inherited == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("bad", ["x", 5, [1], True])
def test_a_nested_object_sent_as_another_type_is_refused_naming_it(api, customer, catalogue, case, bad):
    path, body, where = CASES[case]
    Feature.objects.filter(pk=catalogue["messages"].pk).update(unit_label="message")
    features = Feature.objects.order_by("id")
    before = (Event.objects.count(), Product.objects.count(), list(features.values_list("feature_id", "unit_label")))
    response = api.post(path, _set(body, where, bad))
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "invalid_inputs"
    assert response.json()["message"].startswith(f"{where}: must be an object"), response.json()
    assert (
        Event.objects.count(),
        Product.objects.count(),
        list(features.values_list("feature_id", "unit_label")),
    ) == before


def test_features_update_with_display_as_text_keeps_the_unit_label(api, catalogue):
    Feature.objects.filter(pk=catalogue["messages"].pk).update(unit_label="message")
    response = api.post("features.update", {"feature_id": "messages", "display": "msgs"})
    assert response.status_code == 422
    assert Feature.objects.get(pk=catalogue["messages"].pk).unit_label == "message"
