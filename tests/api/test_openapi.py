"""The OpenAPI document describes what is served: schemathesis fuzzes every operation from it."""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12
_turn = itertools.count()


def test_openapi_document_is_served_without_a_key(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {
        "/v1/customers.get_or_create",
        "/v1/balances.check",
        "/v1/balances.track",
        "/v1/billing.attach",
        "/v1/customers/{customer_id}",
        "/v1/customers/update",
        "/v1/plans.list",
        "/v1/plans.get",
        "/v1/features.list",
        "/v1/features.get",
        "/v1/rewards.list",
        "/v1/events.aggregate",
        "/v1/check",
        "/v1/track",
        "/v1/usage",
        "/v1/entitled",
    } <= set(document["paths"])
    scheme = document["components"]["securitySchemes"]["SecretKeyAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_docs_page_renders_from_our_own_static_files(client):
    response = client.get("/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


# Loaded through the WSGI app, as any client would fetch it; no database is needed to serve it.
schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", get_wsgi_application())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES_PER_OPERATION
)


@pytest.fixture
def wsgi_in_test_transaction():
    """Requests go straight to the WSGI app, inside the test's transaction. Django closes the database
    connection when a request ends; like Django's test client, keep it open for the test."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_operation_answers_500_or_breaks_its_schema(case, wsgi_in_test_transaction, customer, sandbox_key):
    # Every other case names the customer and feature that exist, so the happy paths are fuzzed too.
    if isinstance(case.body, dict) and next(_turn) % 2 == 0:
        if isinstance(case.body.get("customer_id"), str):
            case.body["customer_id"] = "acme_corp"
        if isinstance(case.body.get("feature_id"), str):
            case.body["feature_id"] = "messages"
        if isinstance(case.body.get("plan_id"), str):
            case.body["plan_id"] = "free"
    if case.path_parameters and "customer_id" in case.path_parameters and next(_turn) % 2 == 0:
        case.path_parameters["customer_id"] = "acme_corp"
    case.call_and_validate(headers={"Authorization": f"Bearer {sandbox_key[1]}"}, checks=CHECKS)
