"""subscriptions.list and purchases.list: the plans customers hold and their one-off purchases, in Autumn's
shapes, of the key's environment only, paged by cursor."""

from __future__ import annotations

import pytest
from autumn_sdk import Autumn
from autumn_sdk.models.listpurchasesop import ListPurchasesResponse
from autumn_sdk.models.listsubscriptionsop import ListSubscriptionsResponse

from billing.models import CustomerProduct, Price, Product
from billing.services.products import product_attach


@pytest.fixture
def credits_pack(catalogue):
    """A one-off purchase: 500 messages for a single $49 payment."""
    from decimal import Decimal

    from billing.models import ProductItem

    pack = Product.objects.create(product_id="credits_pack", name="Credits pack", is_add_on=True)
    Price.objects.create(product=pack, type="fixed", amount=4900, currency="usd", interval="one_off")
    ProductItem.objects.create(product=pack, feature=catalogue["messages"], included=Decimal(500), interval="lifetime")
    return pack


@pytest.fixture
def holdings(customer, other_customer, globex, catalogue, credits_pack):
    """Acme moved from Free to Scale and bought a credits pack; Globex (sandbox) on Free; Globex (live) on Free."""
    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    product_attach(customer=customer, product=credits_pack, actor=None)
    return customer


def _rows(api, path, body=None):
    response = api.post(path, body or {})
    assert response.status_code == 200, response.content
    return response.json()


def test_subscriptions_list_answers_the_environments_live_subscriptions_newest_first(api, holdings):
    answer = _rows(api, "subscriptions.list")

    assert [(r["customer_id"], r["plan_id"], r["status"]) for r in answer["list"]] == [
        ("acme_corp", "scale", "active"),
        ("globex", "free", "active"),
    ]
    assert (answer["has_more"], answer["next_cursor"]) == (False, None)
    row = answer["list"][0]
    assert (row["entity_id"], row["scope"], row["past_due"], row["add_on"], row["quantity"]) == (
        None,
        "customer",
        False,
        False,
        1,
    )
    assert row["created_at"] == row["started_at"]


def test_subscriptions_list_pages_by_cursor(api, holdings):
    first = _rows(api, "subscriptions.list", {"limit": 1})
    assert [r["plan_id"] for r in first["list"]] == ["scale"]
    assert first["has_more"] is True

    second = _rows(api, "subscriptions.list", {"limit": 1, "start_cursor": first["next_cursor"]})
    assert [(r["customer_id"], r["plan_id"]) for r in second["list"]] == [("globex", "free")]
    assert (second["has_more"], second["next_cursor"]) == (False, None)


def test_subscriptions_list_filters_by_customer_status_and_plan(api, holdings):
    expired = _rows(api, "subscriptions.list", {"customer_id": "acme_corp", "statuses": ["expired"]})
    assert [(r["plan_id"], r["status"]) for r in expired["list"]] == [("free", "expired")]
    assert expired["list"][0]["expires_at"] is not None

    free = _rows(api, "subscriptions.list", {"plan_id": "free", "statuses": ["active", "expired"]})
    assert [(r["customer_id"], r["status"]) for r in free["list"]] == [("globex", "active"), ("acme_corp", "expired")]

    assert _rows(api, "subscriptions.list", {"statuses": ["past_due"]})["list"] == []


def test_subscriptions_list_counts_an_overdue_plan_as_active_and_past_due(api, holdings):
    CustomerProduct.objects.filter(customer=holdings, product__product_id="scale").update(status="past_due")

    overdue = _rows(api, "subscriptions.list", {"statuses": ["past_due"]})["list"]
    assert [(r["plan_id"], r["status"], r["past_due"]) for r in overdue] == [("scale", "active", True)]
    assert "scale" in [r["plan_id"] for r in _rows(api, "subscriptions.list")["list"]]


def test_purchases_list_answers_one_off_purchases_only(api, holdings):
    answer = _rows(api, "purchases.list")

    assert [(r["customer_id"], r["plan_id"], r["status"], r["quantity"]) for r in answer["list"]] == [
        ("acme_corp", "credits_pack", "active", 1)
    ]
    row = answer["list"][0]
    assert row["id"].startswith("cus_prod_")
    assert (row["expires_at"], row["entity_id"], row["scope"]) == (None, None, "customer")
    assert "credits_pack" not in [r["plan_id"] for r in _rows(api, "subscriptions.list")["list"]]
    assert _rows(api, "purchases.list", {"customer_id": "globex"})["list"] == []


def test_lists_never_show_the_other_environment(live_api, holdings):
    live = _rows(live_api, "subscriptions.list")
    assert [(r["customer_id"], r["plan_id"]) for r in live["list"]] == [("globex", "free")]
    assert _rows(live_api, "purchases.list")["list"] == []

    for path in ("subscriptions.list", "purchases.list"):
        response = live_api.post(path, {"customer_id": "acme_corp"})
        assert response.status_code == 404
        not_found = {"message": "Customer acme_corp not found", "code": "customer_not_found", "env": "live"}
        assert response.json() == not_found


@pytest.mark.parametrize("path", ["subscriptions.list", "purchases.list"])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"entity_id": "seat_1", "customer_id": "acme_corp"}, 422, "not_supported"),
        ({"statuses": ["trialing"]}, 422, None),
        ({"statuses": "active"}, 422, None),
        ({"limit": 201}, 422, None),
        ({"limit": 0}, 422, None),
        ({"plan_id": ""}, 422, None),
        ({"start_cursor": "not-a-cursor"}, 400, "invalid_cursor"),
    ],
)
def test_lists_refuse_bad_input_with_autumns_error_body(api, holdings, path, body, status, code):
    response = api.post(path, body)

    assert response.status_code == status, response.content
    error = response.json()
    assert set(error) == {"message", "code", "env"} and error["message"]
    if code:
        assert error["code"] == code
    if code == "not_supported":
        assert "entity_id" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_python_client_reads_subscriptions_and_purchases(live_server, sandbox_key, holdings):
    _, raw = sandbox_key
    with Autumn(secret_key=raw, server_url=live_server.url, fail_open=False) as autumn:
        subscriptions = autumn.customers.list_subscriptions(limit=1)
        assert isinstance(subscriptions, ListSubscriptionsResponse)
        assert [(s.customer_id, s.plan_id, s.status) for s in subscriptions.list] == [("acme_corp", "scale", "active")]
        assert subscriptions.has_more is True

        rest = autumn.customers.list_subscriptions(limit=1, start_cursor=subscriptions.next_cursor)
        assert [(s.customer_id, s.plan_id) for s in rest.list] == [("globex", "free")]
        assert rest.next_cursor is None

        expired = autumn.customers.list_subscriptions(customer_id="acme_corp", statuses=["expired"])
        assert [(s.plan_id, s.status) for s in expired.list] == [("free", "expired")]

        purchases = autumn.customers.list_purchases()
        assert isinstance(purchases, ListPurchasesResponse)
        assert [(p.plan_id, p.status, p.quantity, p.expires_at) for p in purchases.list] == [
            ("credits_pack", "active", 1, None)
        ]
