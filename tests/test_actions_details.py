"""Sidebar Details: click a field, edit it, "Update" — through the test client."""

from __future__ import annotations

import json

import pytest

from customers.models import AuditEntry, Customer
from customers.services.customers import customer_update
from tests.helpers import CONTACT, page_text

EDIT = "/customers/acme_corp/details/edit/"


@pytest.mark.parametrize(
    ("field", "value"), [("name", "Acme Corporation"), ("email", "billing@acme.test"), ("fingerprint", "fp_123")]
)
def test_update_a_detail_field(ops_client, ops, customer, field, value):
    form = page_text(ops_client.get(f"{EDIT}?field={field}"))

    response = ops_client.post(f"{EDIT}?field={field}", {**CONTACT, field: value})

    assert ">Update</button>" in form
    assert response.status_code == 302 and response.url == "/customers/acme_corp/"
    customer.refresh_from_db()
    assert getattr(customer, field) == value
    entry = AuditEntry.objects.get(action="customer.update", customer=customer)
    assert entry.actor_user == ops and entry.after == {field: value}


def test_inline_form_is_a_fragment_for_htmx(ops_client, customer):
    response = ops_client.get(f"{EDIT}?field=name", HTTP_HX_REQUEST="true")

    html = page_text(response)
    assert html.lstrip().startswith('<form class="inline-edit"') and "<html" not in html
    assert 'value="Acme Corp"' in html and 'hx-post="/customers/acme_corp/details/edit/?field=name"' in html


@pytest.mark.parametrize("clicked", ["name", "email", "fingerprint"])
def test_clicking_name_email_or_fingerprint_opens_all_three_with_the_clicked_one_focused(ops_client, customer, clicked):
    html = page_text(ops_client.get(f"{EDIT}?field={clicked}", HTTP_HX_REQUEST="true"))

    for field, shown in (("name", "Acme Corp"), ("email", "ada@acme.test"), ("fingerprint", "")):
        assert f'name="{field}" id="id_{field}" value="{shown}"' in html
        assert f'name="expected_{field}" value="{shown}"' in html
    assert html.count("autofocus") == 1 and f'id="id_{clicked}" value' in html.split("autofocus")[0][-200:]


def test_name_email_and_fingerprint_change_together_in_one_audited_update(ops_client, ops, customer):
    data = {**CONTACT, "name": "Acme Ltd", "email": "billing@acme.test", "fingerprint": "fp_9"}

    response = ops_client.post(f"{EDIT}?field=name", data, follow=True)

    assert "Updated name, email and fingerprint of Acme Ltd." in page_text(response)
    customer.refresh_from_db()
    assert (customer.name, customer.email, customer.fingerprint) == ("Acme Ltd", "billing@acme.test", "fp_9")
    entry = AuditEntry.objects.get(action="customer.update", customer=customer)
    assert entry.actor_user == ops
    assert entry.after == {"name": "Acme Ltd", "email": "billing@acme.test", "fingerprint": "fp_9"}


def test_updating_without_a_change_says_so_and_stores_nothing(ops_client, customer):
    response = ops_client.post(f"{EDIT}?field=email", CONTACT, follow=True)

    assert "Nothing to update: the name, email and fingerprint are as they were." in page_text(response)
    assert not AuditEntry.objects.filter(action="customer.update").exists()


@pytest.mark.parametrize("bad", ["not-an-email", "ada@", "@acme.test", "a b@acme.test"])
def test_invalid_email_is_refused(ops_client, customer, bad):
    response = ops_client.post(f"{EDIT}?field=email", {**CONTACT, "email": bad}, HTTP_HX_REQUEST="true")

    assert response.status_code == 422
    html = page_text(response)
    assert f"'{bad}' is not a valid email address." in html and f'value="{bad}"' in html
    customer.refresh_from_db()
    assert customer.email == "ada@acme.test"
    assert not AuditEntry.objects.filter(action="customer.update").exists()


def test_changing_the_id_moves_the_page(ops_client, customer):
    response = ops_client.post(f"{EDIT}?field=id", {"value": "acme_corp_2", "expected": "acme_corp"})

    assert response.status_code == 302 and response.url == "/customers/acme_corp_2/"
    customer.refresh_from_db()
    assert customer.customer_id == "acme_corp_2"
    assert AuditEntry.objects.get(action="customer.update").before == {"id": "acme_corp"}


def test_changing_the_id_with_htmx_redirects_the_browser(ops_client, customer):
    response = ops_client.post(f"{EDIT}?field=id", {"value": "acme-2", "expected": "acme_corp"}, HTTP_HX_REQUEST="true")

    assert response.headers["HX-Redirect"] == "/customers/acme-2/"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("acme corp", "A customer id may contain only letters, digits, '_' and '-'."),
        ("acme/corp", "A customer id may contain only letters, digits, '_' and '-'."),
        ("", "A customer id is required."),
        ("x" * 256, "at most 255 characters"),
        ("globex", "A customer with id 'globex' already exists."),
    ],
)
def test_invalid_or_taken_id_is_refused(ops_client, customer, other_customer, bad, message):
    response = ops_client.post(f"{EDIT}?field=id", {"value": bad, "expected": "acme_corp"})

    assert response.status_code == 422 and message in page_text(response)
    customer.refresh_from_db()
    assert customer.customer_id == "acme_corp"


def test_id_used_in_the_other_environment_is_free_here(ops_client, customer, globex):
    assert ops_client.post(f"{EDIT}?field=id", {"value": "globex", "expected": "acme_corp"}).status_code == 302
    assert Customer.objects.get(pk=customer.pk).customer_id == "globex"


def test_metadata_edited_as_key_value_rows(ops_client, customer):
    customer_update(customer=customer, actor=None, metadata={"plan_tier": "gold", "seats": 12, "flags": ["a"]})

    form = page_text(ops_client.get(f"{EDIT}?field=metadata"))
    response = ops_client.post(
        f"{EDIT}?field=metadata",
        {
            "key": ["plan_tier", "seats", "flags", "region", ""],
            "value": ["platinum", "12", "", "eu", ""],
            "expected": json.dumps(customer.metadata),
        },
    )

    assert 'value="plan_tier"' in form and 'value="gold"' in form and 'value="12"' in form
    assert response.status_code == 302
    customer.refresh_from_db()
    # Unchanged non-text values keep their type; an emptied value is still a key; new keys are added.
    assert customer.metadata == {"plan_tier": "platinum", "seats": 12, "flags": "", "region": "eu"}


def test_metadata_row_removed_by_clearing_it(ops_client, customer):
    customer_update(customer=customer, actor=None, metadata={"a": "1", "b": "2"})

    ops_client.post(
        f"{EDIT}?field=metadata", {"key": ["a", ""], "value": ["1", ""], "expected": json.dumps(customer.metadata)}
    )

    customer.refresh_from_db()
    assert customer.metadata == {"a": "1"}


@pytest.mark.parametrize(
    ("keys", "values", "message"),
    [
        (["a", "a"], ["1", "2"], "The key 'a' appears twice."),
        (["", "b"], ["orphan", "2"], "Give the value 'orphan' a key."),
        (["a\x00b"], ["1"], "contains a NUL character"),
        (["plan"], ["pro\x00"], "The key 'plan' or its value contains a NUL character."),
    ],
)
def test_bad_metadata_rows_are_refused(ops_client, customer, keys, values, message):
    customer_update(customer=customer, actor=None, metadata={"keep": "me"})

    response = ops_client.post(
        f"{EDIT}?field=metadata", {"key": keys, "value": values, "expected": json.dumps(customer.metadata)}
    )

    assert response.status_code == 422 and message in page_text(response)
    customer.refresh_from_db()
    assert customer.metadata == {"keep": "me"}


def test_unknown_field_goes_back_to_the_page(ops_client, customer):
    response = ops_client.post(f"{EDIT}?field=stripe_id", {"value": "cus_evil"})

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.stripe_id == ""
