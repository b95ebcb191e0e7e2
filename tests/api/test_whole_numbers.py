"""Versions and counts are whole numbers, however they are sent: autumn-sdk types them as floats and sends
1.0, which means 1 everywhere a version or count is read; 1.5 is refused naming the field."""

from __future__ import annotations

import pytest
from autumn_sdk import Autumn

from billing.models import Balance, CustomerProduct

# (path, body without the field, the field, a whole value): each answers the same to 1 and to 1.0.
SAME_ANSWER = [
    ("billing.attach", {"customer_id": "acme_corp", "plan_id": "pro"}, "version", 1),
    ("billing.preview_attach", {"customer_id": "acme_corp", "plan_id": "pro"}, "version", 1),
    ("billing.update", {"customer_id": "acme_corp", "plan_id": "pro"}, "version", 1),
    ("billing.preview_update", {"customer_id": "acme_corp", "plan_id": "pro"}, "version", 1),
    ("attach", {"customer_id": "acme_corp", "product_id": "pro"}, "version", 1),
    ("plans.get", {"plan_id": "pro"}, "version", 1),
    ("balances.list", {"customer_id": "acme_corp"}, "limit", 2),
    ("events.list", {"customer_id": "acme_corp"}, "limit", 2),
    ("events/list", {"customer_id": "acme_corp"}, "offset", 1),
    ("customers/list", {}, "limit", 5),
    (
        "events.aggregate",
        {"customer_id": "acme_corp", "feature_id": "messages", "group_by": "$customer_id", "range": "30d"},
        "max_groups",
        3,
    ),
]


def _without_times(value):
    """The answer less the moments it was computed at (`effective_at`, `starts_at`…), which differ by a tick."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _same_answer(api, path, body):
    response = api.post(path, body)
    return response.status_code, _without_times(response.json())


@pytest.mark.parametrize(("path", "body", "field", "whole"), SAME_ANSWER)
def test_a_whole_float_is_read_as_that_whole_number(api, customer, catalogue, path, body, field, whole):
    as_int = _same_answer(api, path, {**body, field: whole})
    assert as_int[0] != 422, as_int
    assert _same_answer(api, path, {**body, field: float(whole)}) == as_int


@pytest.mark.parametrize(("path", "body", "field", "whole"), SAME_ANSWER)
@pytest.mark.parametrize("bad", [1.5, "1", True])
def test_a_fraction_or_a_text_is_refused_naming_the_field(api, customer, catalogue, path, body, field, whole, bad):
    before = list(CustomerProduct.objects.values_list("product__product_id", "status"))
    response = api.post(path, {**body, field: bad})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_inputs"
    assert field in response.json()["message"] and "whole number" in response.json()["message"]
    assert list(CustomerProduct.objects.values_list("product__product_id", "status")) == before


def test_a_grant_resetting_every_1_0_months_resets_monthly(api, customer, catalogue):
    body = {"customer_id": "acme_corp", "feature_id": "api_calls", "included_grant": 5}
    response = api.post("balances.create", {**body, "reset": {"interval": "month", "interval_count": 1.0}})
    assert response.status_code == 200, response.content
    grant = Balance.objects.get(customer=customer, feature=catalogue["api_calls"])
    assert (grant.interval, grant.interval_count) == ("month", 1)
    refused = api.post("balances.create", {**body, "reset": {"interval": "month", "interval_count": 1.5}})
    assert refused.status_code == 422 and "interval_count" in refused.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_the_python_client_attaches_and_previews_a_version(live_server, catalogue, sandbox_key):
    """autumn-sdk sends the version as 1.0."""
    beta = catalogue["seats_addon"]
    beta.prices.all().delete()  # free, so the attach needs no Stripe
    with Autumn(secret_key=sandbox_key[1], server_url=live_server.url, fail_open=False) as autumn:
        autumn.customers.get_or_create(customer_id="user_9")
        preview = autumn.billing.preview_attach(customer_id="user_9", plan_id="seats_addon", version=1)
        assert preview.customer_id == "user_9"
        attached = autumn.billing.attach(customer_id="user_9", plan_id="seats_addon", version=1)
        assert (attached.customer_id, attached.payment_url) == ("user_9", None)
    assert CustomerProduct.objects.filter(customer__customer_id="user_9", product=beta, status="active").exists()
