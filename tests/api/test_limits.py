"""The dashboard and the API refuse the same input: each limit lives in the service both call."""

from __future__ import annotations

import json

import pytest

from billing.models import Balance
from customers.errors import ServiceError
from customers.models import AuditEntry
from customers.services.customers import customer_delete, customer_update
from tests.api.test_errors import assert_refused
from tests.helpers import page_text

EDIT = "/customers/acme_corp/details/edit/"
TWO_MB = "x" * (2 * 1024 * 1024)


def _customer_edits() -> int:
    return AuditEntry.objects.filter(action="customer.update").count()


def test_a_two_megabyte_metadata_value_is_refused_by_the_dashboard_and_the_api(ops_client, api, customer):
    customer_update(customer=customer, actor=None, metadata={"keep": "me"})
    edits = _customer_edits()

    page = ops_client.post(
        f"{EDIT}?field=metadata",
        {"key": ["keep", "notes"], "value": ["me", TWO_MB], "expected": json.dumps(customer.metadata)},
        HTTP_HX_REQUEST="true",
    )
    answer = api.post("customers.update", {"customer_id": "acme_corp", "metadata": {"notes": TWO_MB}})

    assert page.status_code == 422
    assert "metadata may be at most 65,536 characters as JSON" in page_text(page)
    assert_refused(answer, 422, "invalid_inputs", "metadata: may be at most 65,536 characters as JSON")
    customer.refresh_from_db()
    assert customer.metadata == {"keep": "me"}
    assert _customer_edits() == edits


def test_metadata_merged_through_the_api_cannot_grow_past_the_limit(api, customer):
    half = "y" * 40_000
    assert api.post("customers.update", {"customer_id": "acme_corp", "metadata": {"a": half}}).status_code == 200
    edits = _customer_edits()

    answer = api.post("customers.update", {"customer_id": "acme_corp", "metadata": {"b": half}})

    assert_refused(answer, 400, "invalid_inputs", "metadata may be at most 65,536 characters as JSON")
    customer.refresh_from_db()
    assert customer.metadata == {"a": half}
    assert _customer_edits() == edits


def test_a_metadata_key_over_255_characters_is_refused_by_the_dashboard_and_the_api(ops_client, api, customer):
    key = "k" * 256
    page = ops_client.post(
        f"{EDIT}?field=metadata", {"key": [key], "value": ["1"], "expected": "{}"}, HTTP_HX_REQUEST="true"
    )
    answer = api.post("customers.update", {"customer_id": "acme_corp", "metadata": {key: 1}})

    assert page.status_code == 422
    assert "metadata keys may be at most 255 characters" in page_text(page)
    assert_refused(answer, 422, "invalid_inputs", "metadata: keys may be at most 255 characters")
    customer.refresh_from_db()
    assert customer.metadata == {}
    # 255 is allowed on both sides.
    assert api.post("customers.update", {"customer_id": "acme_corp", "metadata": {key[:255]: 1}}).status_code == 200


def test_metadata_nested_too_deeply_is_refused(api, customer):
    nested: dict = {}
    for _ in range(40):
        nested = {"n": nested}
    answer = api.post("customers.update", {"customer_id": "acme_corp", "metadata": nested})
    assert_refused(answer, 422, "invalid_inputs", "metadata: may be nested at most 32 levels deep")
    customer.refresh_from_db()
    assert customer.metadata == {}


def test_a_reason_over_500_characters_is_refused_by_the_dashboard_and_the_api(ops_client, api, customer, catalogue):
    balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    reason = "r" * 501
    page = ops_client.post(
        f"/customers/acme_corp/balances/{balance.pk}/edit/",
        {
            "mode": "set",
            "value": "5",
            "reason": reason,
            "expected_remaining": str(balance.remaining),
            "next_reset_at": "",
        },
        HTTP_HX_REQUEST="true",
    )
    answer = api.post(
        "balances.update", {"customer_id": "acme_corp", "feature_id": "messages", "remaining": 5, "reason": reason}
    )
    deleted = ops_client.post("/customers/acme_corp/delete/", {"confirm_id": "acme_corp", "reason": reason})

    assert page.status_code == 422 and "at most 500 characters" in page_text(page)
    assert_refused(answer, 422, "invalid_inputs", "reason: String should have at most 500 characters")
    assert deleted.status_code == 422 and "at most 500 characters" in page_text(deleted)
    balance.refresh_from_db()
    customer.refresh_from_db()
    assert balance.remaining == 100 and customer.deleted_at is None
    assert not AuditEntry.objects.filter(reason=reason).exists()


def test_a_reason_over_500_characters_is_refused_by_the_services(customer, ops):
    with pytest.raises(ServiceError, match="A reason may be at most 500 characters; this one has 501."):
        customer_update(customer=customer, actor=ops, name="New", reason="r" * 501)
    with pytest.raises(ServiceError, match="A reason may be at most 500 characters"):
        customer_delete(customer=customer, actor=ops, reason="r" * 501)
    customer.refresh_from_db()
    assert customer.name == "Acme Corp" and customer.deleted_at is None
