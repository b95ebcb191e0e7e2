"""Bad input answers a 4xx with Autumn's error body and a message saying what is wrong. Nothing is written."""

from __future__ import annotations

import pytest

from billing.models import Balance, Event
from customers.models import AuditEntry, Customer


def snapshot():
    """Everything a refused request must leave as it was."""
    return (
        list(Customer.objects.order_by("pk").values_list("customer_id", "name", "email", "metadata", "deleted_at")),
        list(Balance.objects.order_by("pk").values_list("remaining", "adjustment", "next_reset_at")),
        Event.objects.count(),
        AuditEntry.objects.count(),
    )


def assert_refused(response, status: int, code: str, *words: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "code", "env"}
    assert body["code"] == code
    for word in words:
        assert word in body["message"], body["message"]
    return body


BAD_BODIES = [
    pytest.param(
        "customers.get_or_create",
        '{"customer_id": "x",',
        "application/json",
        400,
        "invalid_request",
        ["not valid JSON"],
        id="malformed-json",
    ),
    pytest.param(
        "customers.get_or_create",
        "customer_id=x",
        "application/x-www-form-urlencoded",
        400,
        "invalid_request",
        ["Content-Type: application/json", "application/x-www-form-urlencoded"],
        id="form-encoded",
    ),
    pytest.param(
        "customers.get_or_create",
        '{"customer_id": "x"}',
        "text/plain",
        400,
        "invalid_request",
        ["Content-Type"],
        id="text-plain",
    ),
    pytest.param(
        "customers.get_or_create",
        '["customer_id", "x"]',
        "application/json",
        400,
        "invalid_request",
        ["JSON object", "list"],
        id="array-body",
    ),
    pytest.param(
        "balances.track",
        '{"customer_id": "acme_corp", "feature_id": "messages", "value": NaN}',
        "application/json",
        400,
        "invalid_request",
        ["NaN"],
        id="nan",
    ),
    pytest.param(
        "balances.track",
        '{"customer_id": "acme_corp", "feature_id": "messages", "value": Infinity}',
        "application/json",
        400,
        "invalid_request",
        ["Infinity"],
        id="infinity",
    ),
    pytest.param(
        "balances.track",
        '{"customer_id": "acme_corp", "feature_id": "messages", "value": -Infinity}',
        "application/json",
        400,
        "invalid_request",
        ["-Infinity"],
        id="minus-infinity",
    ),
    pytest.param(
        "balances.track",
        '{"customer_id": "acme_corp", "feature_id": "messages", "value": 1e400}',
        "application/json",
        400,
        "invalid_request",
        ["too large"],
        id="overflowing-float",
    ),
    pytest.param(
        "customers.update",
        '{"customer_id": "acme_corp", "name": "a\\u0000b"}',
        "application/json",
        400,
        "invalid_request",
        ["NUL"],
        id="nul-character",
    ),
    pytest.param(
        "customers.update",
        '{"customer_id": "acme_corp", "name": "\\ud800"}',
        "application/json",
        400,
        "invalid_request",
        ["surrogate"],
        id="lone-surrogate",
    ),
    pytest.param(
        "customers.update",
        '{"customer_id": "acme_corp", "metadata": ' + "[" * 5000 + "]" * 5000 + "}",
        "application/json",
        400,
        "invalid_request",
        ["nested too deeply"],
        id="deep-nesting",
    ),
]


@pytest.mark.parametrize(("path", "raw", "content_type", "status", "code", "words"), BAD_BODIES)
def test_unreadable_body_is_refused_and_nothing_is_written(api, customer, path, raw, content_type, status, code, words):
    before = snapshot()
    response = api.post(path, raw=raw, content_type=content_type)
    body = assert_refused(response, status, code, *words)
    assert body["env"] == "sandbox"
    assert snapshot() == before


BAD_INPUTS = [
    pytest.param(
        "balances.track",
        {"feature_id": "messages"},
        422,
        "invalid_inputs",
        ["customer_id: is required"],
        id="missing-customer-id",
    ),
    pytest.param(
        "balances.check",
        {"customer_id": "acme_corp"},
        422,
        "invalid_inputs",
        ["feature_id: is required"],
        id="missing-feature-id",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp"},
        422,
        "invalid_inputs",
        ["feature_id or event_name"],
        id="track-names-no-feature",
    ),
    pytest.param(
        "customers.get",
        {"customer_id": 123},
        422,
        "invalid_inputs",
        ["customer_id: must be a string"],
        id="number-as-id",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "messages", "value": "3"},
        422,
        "invalid_inputs",
        ["value: must be a number"],
        id="string-as-number",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "messages", "value": True},
        422,
        "invalid_inputs",
        ["value: must be a number"],
        id="boolean-as-number",
    ),
    pytest.param(
        "customers.update",
        {"customer_id": "acme_corp", "send_email_receipts": "yes"},
        422,
        "invalid_inputs",
        ["send_email_receipts"],
        id="string-as-boolean",
    ),
    pytest.param(
        "customers.update",
        {"customer_id": "acme_corp", "metadata": ["a"]},
        422,
        "invalid_inputs",
        ["metadata"],
        id="list-as-metadata",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "messages", "value": 1e16},
        422,
        "invalid_inputs",
        ["value: must be between"],
        id="huge-number",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "messages", "value": 10**30},
        422,
        "invalid_inputs",
        ["value: must be between"],
        id="huge-integer",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "messages", "value": 0.1234567},
        422,
        "invalid_inputs",
        ["at most 6 decimals"],
        id="too-many-decimals",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "messages", "timestamp": 10**16},
        422,
        "invalid_inputs",
        ["timestamp"],
        id="timestamp-past-year-9999",
    ),
    pytest.param(
        "customers.update",
        {"customer_id": "acme_corp", "name": "n" * 256},
        422,
        "invalid_inputs",
        ["name: String should have at most 255 characters"],
        id="over-long-name",
    ),
    pytest.param(
        "customers.get_or_create",
        {"customer_id": "c" * 256},
        422,
        "invalid_inputs",
        ["customer_id: A customer id may be at most 255 characters"],
        id="over-long-id",
    ),
    pytest.param(
        "customers.get_or_create",
        {"customer_id": "acme corp!"},
        422,
        "invalid_inputs",
        ["only letters, digits, '_' and '-'"],
        id="bad-id-characters",
    ),
    pytest.param(
        "customers.get_or_create",
        {"customer_id": None},
        422,
        "invalid_inputs",
        ["customer_id: must be a string"],
        id="null-id",
    ),
    pytest.param(
        "customers.update",
        {"customer_id": "acme_corp", "new_customer_id": "a/b"},
        422,
        "invalid_inputs",
        ["new_customer_id", "only letters"],
        id="bad-new-id",
    ),
    pytest.param(
        "customers.update",
        {"customer_id": "acme_corp", "email": "not-an-email"},
        400,
        "invalid_inputs",
        ["not a valid email address"],
        id="bad-email",
    ),
    pytest.param(
        "customers.get", {"customer_id": "nobody"}, 404, "customer_not_found", ["nobody"], id="unknown-customer"
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "nobody", "feature_id": "messages"},
        404,
        "customer_not_found",
        ["nobody"],
        id="track-unknown-customer",
    ),
    pytest.param(
        "balances.check",
        {"customer_id": "acme_corp", "feature_id": "teleport"},
        404,
        "feature_not_found",
        ["teleport"],
        id="unknown-feature",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "teleport"},
        404,
        "feature_not_found",
        ["teleport"],
        id="track-unknown-feature",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "event_name": "beamed_up"},
        404,
        "feature_not_found",
        ["beamed_up"],
        id="track-unknown-event-name",
    ),
    pytest.param(
        "balances.track",
        {"customer_id": "acme_corp", "feature_id": "sso"},
        400,
        "invalid_inputs",
        ["on/off feature"],
        id="track-boolean-feature",
    ),
    pytest.param(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages", "remaining": -5},
        400,
        "overage_not_allowed",
        ["negative balance"],
        id="negative-balance-without-overage",
    ),
    pytest.param(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages", "usage": 5},
        422,
        "invalid_inputs",
        ["usage is never rewritten"],
        id="usage-is-never-rewritten",
    ),
    pytest.param(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages", "remaining": 5, "add_to_balance": 5},
        422,
        "invalid_inputs",
        ["not both"],
        id="set-and-add",
    ),
    pytest.param(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages"},
        422,
        "invalid_inputs",
        ["nothing to change"],
        id="nothing-to-change",
    ),
    pytest.param(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages", "remaining": 5, "next_reset_at": 1000},
        400,
        "invalid_inputs",
        ["future"],
        id="reset-in-the-past",
    ),
    pytest.param(
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "seats", "remaining": 5},
        404,
        "balance_not_found",
        ["seats"],
        id="feature-without-balance",
    ),
    pytest.param(
        "balances.create",
        {"customer_id": "acme_corp", "feature_id": "messages", "included_grant": -1},
        400,
        "invalid_inputs",
        ["must not be negative"],
        id="negative-grant",
    ),
    pytest.param(
        "customers.list", {"start_cursor": "not-a-cursor"}, 400, "invalid_cursor", ["next_cursor"], id="forged-cursor"
    ),
    pytest.param("customers.list", {"limit": 0}, 422, "invalid_inputs", ["limit"], id="zero-limit"),
    pytest.param("events.list", {"feature_id": [""]}, 422, "invalid_inputs", ["feature_id"], id="empty-feature-id"),
    pytest.param(
        "billing.attach",
        {"customer_id": "acme_corp", "plan_id": "platinum"},
        404,
        "product_not_found",
        ["platinum"],
        id="unknown-plan",
    ),
    pytest.param(
        "billing.attach",
        {"customer_id": "acme_corp", "plan_id": "free"},
        409,
        "product_already_attached",
        ["already has"],
        id="plan-already-attached",
    ),
    pytest.param(
        "billing.attach",
        {"customer_id": "acme_corp", "plan_id": "pro", "success_url": "javascript:x"},
        422,
        "invalid_inputs",
        ["success_url"],
        id="bad-success-url",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "code", "words"), BAD_INPUTS)
def test_invalid_input_is_refused_with_what_is_wrong_and_nothing_is_written(
    api, customer, path, body, status, code, words
):
    before = snapshot()
    assert_refused(api.post(path, body), status, code, *words)
    assert snapshot() == before


def test_rename_to_an_existing_id_is_a_conflict(api, customer):
    api.post("customers.get_or_create", {"customer_id": "globex"})
    before = snapshot()
    assert_refused(
        api.post("customers.update", {"customer_id": "acme_corp", "new_customer_id": "globex"}),
        409,
        "duplicate_customer_id",
        "globex",
    )
    assert snapshot() == before


def test_paid_plan_without_stripe_says_stripe_is_not_connected(api, customer, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    before = snapshot()
    body = assert_refused(
        api.post("billing.attach", {"customer_id": "acme_corp", "plan_id": "pro"}),
        400,
        "stripe_not_connected",
        "Stripe is not connected",
    )
    assert "Pro" in body["message"]
    assert snapshot() == before


def test_unknown_endpoint_answers_json_404(api):
    assert_refused(api.post("customers.teleport", {}), 404, "not_found", "/v1/customers.teleport")


def test_wrong_method_is_refused(api, customer):
    response = api.get("customers.get")
    assert response.status_code == 405


# A number or boolean with a default may be left out; sent as null it is a wrong type, never the default.
EXPLICIT_NULLS = [
    ("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": None}, "value"),
    ("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "timestamp": None}, "timestamp"),
    (
        "balances.check",
        {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": None},
        "required_balance",
    ),
    ("balances.check", {"customer_id": "acme_corp", "feature_id": "messages", "send_event": None}, "send_event"),
    ("balances.update", {"customer_id": "acme_corp", "feature_id": "messages", "remaining": None}, "remaining"),
    (
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages", "add_to_balance": None},
        "add_to_balance",
    ),
    (
        "balances.update",
        {"customer_id": "acme_corp", "feature_id": "messages", "remaining": 5, "next_reset_at": None},
        "next_reset_at",
    ),
    ("balances.update", {"customer_id": "acme_corp", "feature_id": "messages", "remaining": 5, "usage": None}, "usage"),
    ("balances.create", {"customer_id": "acme_corp", "feature_id": "seats", "included_grant": None}, "included_grant"),
    ("balances.create", {"customer_id": "acme_corp", "feature_id": "seats", "unlimited": None}, "unlimited"),
    (
        "balances.create",
        {
            "customer_id": "acme_corp",
            "feature_id": "seats",
            "included_grant": 3,
            "reset": {"interval": "month", "interval_count": None},
        },
        "reset.interval_count",
    ),
    ("customers.get_or_create", {"customer_id": "globex", "send_email_receipts": None}, "send_email_receipts"),
    ("customers.update", {"customer_id": "acme_corp", "send_email_receipts": None}, "send_email_receipts"),
    ("customers.delete", {"customer_id": "acme_corp", "delete_in_stripe": None}, "delete_in_stripe"),
    ("customers.list", {"limit": None}, "limit"),
    ("customers.list", {"plans": [{"id": "pro", "versions": None}]}, "plans.0.versions"),
    ("events.list", {"limit": None}, "limit"),
    ("events.list", {"custom_range": {"start": None}}, "custom_range.start"),
    ("invoices.list", {"limit": None}, "limit"),
    ("billing.attach", {"customer_id": "acme_corp", "plan_id": "scale", "version": None}, "version"),
]


@pytest.mark.parametrize(
    ("path", "body", "field"), EXPLICIT_NULLS, ids=[f"{path}-{field}" for path, _, field in EXPLICIT_NULLS]
)
def test_explicit_null_for_a_number_or_boolean_is_refused_not_taken_as_the_default(api, customer, path, body, field):
    before = snapshot()
    assert_refused(api.post(path, body), 422, "invalid_inputs", f"{field}: may not be null")
    assert snapshot() == before
