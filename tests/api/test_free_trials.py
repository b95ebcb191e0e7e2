"""A plan's free_trial over the API, in Autumn's shape (duration_length, duration_type, card_required): written
and read by plans.* and catalog.*, refused by the field's name when it is wrong, versioned like the plan's
items when customers hold it, and started by billing.attach once per customer."""

from __future__ import annotations

import pytest
from autumn_sdk import Autumn

from billing.models import CustomerProduct, Product
from billing.services.plans import plan_cancel
from billing.services.products import product_attach
from customers.models import AuditEntry

TRIAL = {"duration_length": 14, "duration_type": "day", "card_required": False}
ANSWERED = {**TRIAL, "on_end": "bill"}
PLAN = {"plan_id": "team", "name": "Team", "price": {"amount": 49, "interval": "month"}, "items": []}


def _trial_row(plan_id: str, version: int = 1):
    return Product.objects.filter(product_id=plan_id, version=version).values_list(
        "trial_length", "trial_unit", "trial_card_required"
    )[0]


def test_plans_create_get_list_and_update_carry_the_free_trial(api, sandbox_key, catalogue):
    created = api.post("plans.create", {**PLAN, "free_trial": TRIAL})
    assert created.status_code == 200, created.content
    assert created.json()["free_trial"] == ANSWERED
    assert _trial_row("team") == (14, "day", False)
    assert api.post("plans.get", {"plan_id": "team"}).json()["free_trial"] == ANSWERED
    listed = {p["id"]: p["free_trial"] for p in api.post("plans.list", {}).json()["list"]}
    assert listed["team"] == ANSWERED and listed["pro"] is None

    # Autumn's default unit is a month; no card unless asked.
    monthly = api.post("plans.update", {"plan_id": "team", "free_trial": {"duration_length": 2}}).json()
    assert monthly["free_trial"] == {
        "duration_length": 2,
        "duration_type": "month",
        "card_required": False,
        "on_end": "bill",
    }
    assert monthly["version"] == 1  # no customers: changed in place
    untouched = api.post("plans.update", {"plan_id": "team", "name": "Team plus"}).json()
    assert untouched["free_trial"]["duration_length"] == 2  # not sent: kept
    removed = api.post("plans.update", {"plan_id": "team", "free_trial": None}).json()
    assert removed["free_trial"] is None and _trial_row("team") == (None, "", False)
    entry = AuditEntry.objects.filter(action="plan.update", target_id="team").order_by("id").last()
    assert entry.before["free_trial"] == {"length": 2, "unit": "month", "card_required": False}


@pytest.mark.parametrize(
    ("trial", "field"),
    [
        ({"duration_length": 14, "duration_type": "week"}, "free_trial.duration_type"),
        ({"duration_length": 0, "duration_type": "day"}, "free_trial.duration_length"),
        ({"duration_length": 3, "duration_type": "year"}, "free_trial.duration_length"),
        ({"duration_length": 1.5, "duration_type": "month"}, "free_trial.duration_length"),
        ({"duration_length": 7, "on_end": "revert"}, "free_trial.on_end"),
    ],
)
def test_a_wrong_free_trial_is_refused_by_its_field_and_changes_nothing(api, catalogue, trial, field):
    before = list(Product.objects.values_list("product_id", "version", "trial_length"))
    response = api.post("plans.create", {**PLAN, "free_trial": trial})
    assert response.status_code == 422, response.content
    assert field in response.json()["message"]
    assert list(Product.objects.values_list("product_id", "version", "trial_length")) == before
    in_catalog = api.post("catalog.update", {"plans": [{**PLAN, "free_trial": trial}], "skip_deletions": True})
    assert in_catalog.status_code == 422 and f"plans[0].{field}" in in_catalog.json()["message"]


def test_a_free_trial_without_its_length_is_a_4xx(api, catalogue):
    response = api.post("plans.create", {**PLAN, "free_trial": {"duration_type": "day"}})
    assert response.status_code in (400, 422) and "duration_length" in response.content.decode()
    assert not Product.objects.filter(product_id="team").exists()


def test_a_trial_change_on_a_plan_customers_hold_makes_a_new_version_as_autumn_does(api, customer, catalogue):
    api.post("plans.create", PLAN)
    product_attach(customer=customer, product=Product.objects.get(product_id="team"), actor=None)
    preview = api.post("catalog.preview_update", {"plans": [{**PLAN, "free_trial": TRIAL}]}).json()
    [change] = preview["plan_changes"]
    assert (change["action"], change["versionable"], change["customer_count"]) == ("updated", True, 1)
    assert change["previous_attributes"] == {"free_trial": None}

    pushed = api.post("catalog.update", {"plans": [{**PLAN, "free_trial": TRIAL}], "skip_deletions": True})
    assert pushed.status_code == 200, pushed.content
    assert _trial_row("team", 2) == (14, "day", False) and _trial_row("team", 1) == (None, "", False)
    assert CustomerProduct.objects.get(customer=customer, product__product_id="team").product.version == 1
    refused = api.post("plans.update", {"plan_id": "team", "free_trial": None, "disable_version": True})
    assert refused.status_code == 200  # v2 has no customers: in place
    assert _trial_row("team", 2) == (None, "", False)


def test_billing_attach_starts_the_trial_once_and_eligibility_says_so(api, customer, catalogue):
    api.post("plans.update", {"plan_id": "pro", "free_trial": TRIAL})
    plans = {p["id"]: p for p in api.post("plans.list", {"customer_id": "acme_corp"}).json()["list"]}
    assert plans["pro"]["customer_eligibility"]["trial_available"] is True
    assert plans["scale"]["customer_eligibility"]["trial_available"] is False

    body = api.post("billing.attach", {"customer_id": "acme_corp", "plan_id": "pro"}).json()
    assert body["payment_url"] is None  # no card needed: started at once, without Stripe
    cp = CustomerProduct.objects.get(customer=customer, product__product_id="pro")
    assert cp.status == "trialing" and cp.trial_ends_at is not None
    got = api.post("customers.get_or_create", {"customer_id": "acme_corp"}).json()
    [pro] = [s for s in got["subscriptions"] if s["plan_id"] == "pro"]
    assert pro["trial_ends_at"] == int(cp.trial_ends_at.timestamp() * 1000)
    plans = {p["id"]: p for p in api.post("plans.list", {"customer_id": "acme_corp"}).json()["list"]}
    assert plans["pro"]["customer_eligibility"]["trialing"] is True

    plan_cancel(customer=customer, customer_product=cp, actor=None, when="now")
    again = {p["id"]: p for p in api.post("plans.list", {"customer_id": "acme_corp"}).json()["list"]}
    assert again["pro"]["customer_eligibility"]["trial_available"] is False  # one trial per customer and plan
    api.post("billing.attach", {"customer_id": "acme_corp", "plan_id": "pro"})
    assert not CustomerProduct.objects.filter(customer=customer, product__product_id="pro", status="trialing").exists()


@pytest.mark.django_db(transaction=True)
def test_autumn_sdk_writes_and_reads_a_plan_s_free_trial(live_server, transactional_db, catalogue, sandbox_key):
    _, raw = sandbox_key
    with Autumn(secret_key=raw, server_url=live_server.url, fail_open=False) as autumn:
        created = autumn.plans.create(
            plan_id="writer",
            name="Writer",
            price={"amount": 12, "interval": "month"},
            free_trial={"duration_length": 7, "duration_type": "day", "card_required": True},
        )
        assert (created.free_trial.duration_length, created.free_trial.duration_type) == (7, "day")
        assert created.free_trial.card_required is True
        got = autumn.plans.get(plan_id="writer")
        assert got.free_trial.duration_length == 7
        listed = {p.id: p.free_trial for p in autumn.plans.list().list}
        assert listed["writer"].duration_type == "day" and listed["pro"] is None
        updated = autumn.plans.update(plan_id="writer", free_trial={"duration_length": 1, "duration_type": "month"})
        assert (updated.free_trial.duration_length, updated.free_trial.duration_type) == (1, "month")
    assert _trial_row("writer") == (1, "month", False)
