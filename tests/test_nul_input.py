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
