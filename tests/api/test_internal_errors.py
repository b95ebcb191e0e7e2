"""An unexpected failure under /v1/ answers Autumn's JSON error with a 500, never an HTML page."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import RequestFactory
from django.urls import get_resolver

from billing.models import Balance, Event
from customers.models import Customer, IdempotencyRecord

INTERNAL_ERROR = {
    "message": "Something went wrong on our side. Try again later.",
    "code": "internal_error",
    "env": "sandbox",
}


def assert_internal_error(response):
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == INTERNAL_ERROR


@pytest.fixture
def refuse_inserts():
    """Make PostgreSQL refuse every insert into a table, as a full disk or a broken replica would."""
    tables = []

    def refuse(table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE OR REPLACE FUNCTION test_refuse_insert() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER test_refuse_insert BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_insert()"
            )
        tables.append(table)

    yield refuse
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DROP TRIGGER IF EXISTS test_refuse_insert ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS test_refuse_insert()")


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_customer_whose_stored_metadata_is_corrupt_answers_json_500(api, customer, client, settings, debug):
    settings.DEBUG = debug
    client.raise_request_exception = False
    Customer.objects.filter(pk=customer.pk).update(metadata=["not", "an", "object"])  # written around the services

    assert_internal_error(api.post("customers.get", {"customer_id": "acme_corp"}))
    assert_internal_error(api.post("customers.update", {"customer_id": "acme_corp", "metadata": {"a": 1}}))
    customer.refresh_from_db()
    assert customer.metadata == ["not", "an", "object"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_the_database_refusing_a_track_on_the_lean_path_answers_json_500(
    api, customer, catalogue, client, settings, refuse_inserts, debug
):
    settings.DEBUG = debug
    client.raise_request_exception = False
    balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    refuse_inserts("billing_event")

    response = api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 3})

    assert_internal_error(response)
    assert Event.objects.count() == 0
    balance.refresh_from_db()
    assert balance.remaining == 100


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_the_database_refusing_an_idempotency_record_answers_json_500(
    api, customer, client, settings, refuse_inserts, debug
):
    settings.DEBUG = debug
    client.raise_request_exception = False
    refuse_inserts("customers_idempotencyrecord")

    response = api.post("customers.get_or_create", {"customer_id": "globex"}, headers={"Idempotency-Key": "k-1"})

    assert_internal_error(response)
    assert not Customer.objects.filter(customer_id="globex").exists()
    assert IdempotencyRecord.objects.count() == 0


def test_djangos_own_500_answers_json_under_v1_and_the_html_page_elsewhere(db):
    handler = get_resolver().resolve_error_handler(500)
    api_answer = handler(RequestFactory().post("/v1/customers.get"))
    page = handler(RequestFactory().get("/customers/"))

    assert api_answer.status_code == 500 and api_answer["Content-Type"] == "application/json"
    assert json.loads(api_answer.content) == {**INTERNAL_ERROR, "env": None}
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
