"""A NUL character in a query string or a customer id: PostgreSQL refuses to compare text with one,
so it must be answered before the database is asked (these answered 500 on PostgreSQL)."""

import pytest
from django.urls import reverse

from billing.services.track import balance_track
from tests.helpers import page_text

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.parametrize("query", ["q=acme%00", "product=free%00", "q=%00&status=active"])
def test_customer_list_search_with_a_nul_finds_no_one(ops_client, customer, query):
    response = ops_client.get(f"/customers/?{query}")

    assert response.status_code == 200
    assert "acme_corp" not in page_text(response)


def test_export_with_a_nul_in_the_search_is_just_the_header(ops_client, customer):
    response = ops_client.get(reverse("customers:export") + "?q=acme%00")

    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200
    assert body.splitlines()[0].startswith("id,name,email") and "acme_corp" not in body


@pytest.mark.parametrize("path", ["acme%00corp/", "acme%00corp/events/", "%00/delete/", "%00/details/edit/?field=name"])
def test_a_customer_id_with_a_nul_is_not_found(ops_client, customer, path):
    response = ops_client.get(f"/customers/{path}", **HTMX)

    assert response.status_code == 404


def test_events_filtered_by_a_feature_with_a_nul_show_none(ops_client, customer, catalogue):
    balance_track(customer=customer, feature=catalogue["messages"], value=3, actor=None)

    page = ops_client.get("/customers/acme_corp/?events_feature=messages%00")
    rows = ops_client.get("/customers/acme_corp/events/?events_feature=messages%00", **HTMX)

    assert page.status_code == 200 and rows.status_code == 200
    assert "No events" in page_text(rows)


BULK = {"scope": "all", "action": "add_balance", "act_feature": "messages", "act_amount": "5", "reason": "gift"}


@pytest.mark.parametrize(
    "field",
    ["action", "act_feature", "act_amount", "act_interval", "act_expires_at", "act_reward", "act_product"]
    + ["act_grant_free", "reason", "q", "ids", "scope", "unknown_field"],
)
@pytest.mark.parametrize("step", ["preview", "run"])
def test_a_nul_in_any_bulk_field_is_a_form_error_and_changes_nothing(ops_client, customer, field, step):
    from billing.models import Balance, BulkJob

    data = {**BULK, step: "1", field: f"{BULK.get(field, 'x')}\x00"}

    response = ops_client.post("/bulk/", data)

    assert response.status_code == 422
    assert "can't contain a NUL character" in page_text(response)
    assert f"'{field}'" in page_text(response)
    assert 'id="bulk-preview"' not in page_text(response)
    assert not BulkJob.objects.exists()
    assert Balance.objects.get(customer=customer, feature__feature_id="messages").remaining == 100


def test_a_nul_in_the_bulk_form_opened_from_the_list_is_a_message(ops_client, customer):
    response = ops_client.get("/bulk/?scope=all&act_feature=messages%00&reason=%00")

    assert response.status_code == 422 and "can't contain a NUL character" in page_text(response)
