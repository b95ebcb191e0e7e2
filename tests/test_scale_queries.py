"""Query shapes that keep the dashboard fast at a million customers (docs/benchmarks.md)."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.services.customers import customer_create


def test_a_search_with_one_match_still_asks_for_a_full_page(ops_client, catalogue):
    # With LIMIT 1 (Django's paginator asks for exactly the rows left) PostgreSQL walked the
    # created-at index past a million rows instead of using the trigram indexes.
    for n in range(3):
        customer_create(env="sandbox", customer_id=f"user_{n}abc", actor=None, email=f"p{n}@example.com")
    with CaptureQueriesContext(connection) as ctx:
        response = ops_client.get("/customers/", {"q": "user_1a"})
    assert response.status_code == 200
    assert "user_1abc" in response.content.decode() and "user_2abc" not in response.content.decode()
    listing = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith('SELECT "customers_customer"."id"') and "ORDER BY" in q["sql"]
    ]
    # A full page and one more row, which says whether there is a next page (the count is capped).
    assert listing and all(re.search(r"LIMIT 51\b", sql) for sql in listing), listing
