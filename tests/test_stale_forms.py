"""Two tabs, one customer: a dashboard form opened before someone else's change never overwrites it.

Each test opens the form (GET), lets the value change in between (the API, another person), then
posts what the browser would post from the form it opened.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import Balance, CustomerProduct, Product
from billing.services.balances import balance_set
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.models import AuditEntry, Customer
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_update
from tests.helpers import form_values, page_text

EDIT = "/customers/acme_corp/details/edit/"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def backend_api(db, ops):
    """The customer's own backend, calling the REST API with a sandbox key."""
    _, raw_key = api_key_create(env="sandbox", name="Backend", actor=ops)
    client = Client()

    def update(customer_id: str, **body):
        response = client.post(
            "/v1/customers.update",
            data=json.dumps({"customer_id": customer_id, **body}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw_key}"},
        )
        assert response.status_code == 200, response.content
        return response

    return update


def audit_count() -> int:
    return AuditEntry.objects.count()


# --- Details fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["plain form", "htmx"])
def test_stale_details_form_answers_conflict_and_stores_nothing(ops_client, customer, backend_api, htmx):
    extra = HTMX if htmx else {}
    opened = ops_client.get(f"{EDIT}?field=email", **extra)
    backend_api("acme_corp", email="billing@acme.test")  # meanwhile, the API
    entries = audit_count()

    response = ops_client.post(f"{EDIT}?field=email", form_values(opened, email="ada.new@acme.test"), **extra)

    html = page_text(response)
    assert response.status_code == 409
    assert (
        "The email changed since you opened it (by API key Backend (am_sk_test_" in html
    ) and "just now): it is now “billing@acme.test”." in html
    assert 'value="ada.new@acme.test"' in html  # what was typed is kept
    assert ("<html" in html) is not htmx
    customer.refresh_from_db()
    assert customer.email == "billing@acme.test"
    assert audit_count() == entries
    # Having seen the current value, updating again from the re-shown form replaces it.
    again = ops_client.post(f"{EDIT}?field=email", form_values(response), **extra)
    assert again.status_code == 200 if htmx else again.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "ada.new@acme.test"


def test_stale_details_form_names_the_person_who_changed_it(ops_client, customer, support):
    opened = ops_client.get(f"{EDIT}?field=name")
    customer_update(customer=customer, actor=support, name="Acme Inc", expected={"name": "Acme Corp"})

    response = ops_client.post(f"{EDIT}?field=name", form_values(opened, name="Acme Corporation"))

    assert response.status_code == 409
    assert "The name changed since you opened it (by sam_support, just now): it is now “Acme Inc”." in (
        page_text(response)
    )
    assert Customer.objects.get(pk=customer.pk).name == "Acme Inc"


def test_change_of_another_field_is_no_conflict(ops_client, customer, backend_api):
    opened = ops_client.get(f"{EDIT}?field=name")
    backend_api("acme_corp", email="billing@acme.test")

    response = ops_client.post(f"{EDIT}?field=name", form_values(opened, name="Acme Corporation"))

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.email) == ("Acme Corporation", "billing@acme.test")


def test_fresh_details_form_saves(ops_client, customer):
    opened = ops_client.get(f"{EDIT}?field=fingerprint")

    response = ops_client.post(f"{EDIT}?field=fingerprint", form_values(opened, fingerprint="fp_1"))

    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).fingerprint == "fp_1"
    assert AuditEntry.objects.get(action="customer.update").after == {"fingerprint": "fp_1"}


def test_stale_form_that_already_agrees_saves_nothing_and_is_no_conflict(ops_client, customer, backend_api):
    opened = ops_client.get(f"{EDIT}?field=email")
    backend_api("acme_corp", email="billing@acme.test")
    entries = audit_count()

    response = ops_client.post(f"{EDIT}?field=email", form_values(opened, email="billing@acme.test"))

    assert response.status_code == 302 and audit_count() == entries


def test_details_post_without_what_it_was_based_on_is_refused(ops_client, customer):
    response = ops_client.post(f"{EDIT}?field=name", {"name": "Acme Ltd", "email": "", "fingerprint": ""})

    assert response.status_code == 422
    assert "This form is out of date: reopen it to see the current details." in page_text(response)
    assert Customer.objects.get(pk=customer.pk).name == "Acme Corp"


def test_api_update_keeps_last_write_wins(customer, backend_api):
    backend_api("acme_corp", name="One")
    backend_api("acme_corp", name="Two")

    assert Customer.objects.get(pk=customer.pk).name == "Two"


# --- Metadata -----------------------------------------------------------------------------------------


def metadata_of(customer) -> dict:
    return Customer.objects.get(pk=customer.pk).metadata


def rows(response, **typed) -> dict:
    """The metadata form as opened, with some rows' values changed (key → new value, None clears it)."""
    data = form_values(response)
    keys, values = list(data["key"]), list(data["value"])
    for key, value in typed.items():
        if key in keys:
            i = keys.index(key)
            if value is None:
                keys[i] = values[i] = ""
            else:
                values[i] = value
        else:
            i = keys.index("")
            keys[i], values[i] = key, value
    return {**data, "key": keys, "value": values}


def test_stale_metadata_form_keeps_keys_added_since(ops_client, customer, backend_api):
    customer_update(customer=customer, actor=None, metadata={"plan_tier": "gold", "seats": 12})
    opened = ops_client.get(f"{EDIT}?field=metadata")
    backend_api("acme_corp", metadata={"crm_id": "hs_42"})  # adds a key (the API merges metadata)

    response = ops_client.post(f"{EDIT}?field=metadata", rows(opened, plan_tier="platinum", region="eu"))

    assert response.status_code == 302
    assert metadata_of(customer) == {"plan_tier": "platinum", "seats": 12, "crm_id": "hs_42", "region": "eu"}


def test_stale_metadata_form_leaves_keys_it_did_not_touch_as_they_are_now(ops_client, customer, backend_api):
    customer_update(customer=customer, actor=None, metadata={"a": "1", "b": "2"})
    opened = ops_client.get(f"{EDIT}?field=metadata")
    backend_api("acme_corp", metadata={"b": "20"})

    response = ops_client.post(f"{EDIT}?field=metadata", rows(opened, a="10"))

    assert response.status_code == 302
    assert metadata_of(customer) == {"a": "10", "b": "20"}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain form", "htmx"])
def test_metadata_key_changed_since_is_a_conflict(ops_client, customer, backend_api, htmx):
    extra = HTMX if htmx else {}
    customer_update(customer=customer, actor=None, metadata={"plan_tier": "gold", "seats": 12})
    opened = ops_client.get(f"{EDIT}?field=metadata", **extra)
    backend_api("acme_corp", metadata={"plan_tier": "silver", "crm_id": "hs_42"})
    entries = audit_count()

    response = ops_client.post(f"{EDIT}?field=metadata", rows(opened, plan_tier="platinum", seats="14"), **extra)

    html = page_text(response)
    assert response.status_code == 409
    assert "Metadata changed since you opened it: “plan_tier” is now “silver” (by API key Backend" in html
    assert metadata_of(customer) == {"plan_tier": "silver", "seats": 12, "crm_id": "hs_42"}
    assert audit_count() == entries
    # The form shown again holds the current metadata with this form's changes on top …
    again = form_values(response)
    assert {k: v for k, v in zip(again["key"], again["value"], strict=True) if k} == {
        "plan_tier": "platinum",
        "seats": "14",
        "crm_id": "hs_42",
    }
    # … so updating again applies them to it.
    ops_client.post(f"{EDIT}?field=metadata", again, **extra)
    assert metadata_of(customer) == {"plan_tier": "platinum", "seats": "14", "crm_id": "hs_42"}


def test_metadata_key_removed_here_but_changed_since_is_a_conflict(ops_client, customer, support):
    customer_update(customer=customer, actor=None, metadata={"a": "1", "b": "2"})
    opened = ops_client.get(f"{EDIT}?field=metadata")
    customer_update(customer=customer, actor=support, metadata={"a": "1", "b": "3"})

    response = ops_client.post(f"{EDIT}?field=metadata", rows(opened, b=None))

    assert response.status_code == 409
    assert "“b” is now “3” (by sam_support, just now)" in page_text(response)
    assert metadata_of(customer) == {"a": "1", "b": "3"}


def test_metadata_key_changed_here_but_removed_since_is_a_conflict(ops_client, customer, backend_api):
    customer_update(customer=customer, actor=None, metadata={"a": "1", "b": "2"})
    opened = ops_client.get(f"{EDIT}?field=metadata")
    backend_api("acme_corp", metadata={"b": None})  # the API merges: null removes a key

    response = ops_client.post(f"{EDIT}?field=metadata", rows(opened, b="5"))

    assert response.status_code == 409 and "“b” was removed (by API key Backend" in page_text(response)
    assert metadata_of(customer) == {"a": "1"}


def test_metadata_key_added_both_here_and_since_with_other_values_is_a_conflict(ops_client, customer, backend_api):
    opened = ops_client.get(f"{EDIT}?field=metadata")
    backend_api("acme_corp", metadata={"region": "us"})

    response = ops_client.post(f"{EDIT}?field=metadata", rows(opened, region="eu"))

    assert response.status_code == 409 and "“region” was added as “us” (by API key Backend" in page_text(response)
    assert metadata_of(customer) == {"region": "us"}


def test_metadata_post_without_what_it_was_based_on_is_refused(ops_client, customer):
    customer_update(customer=customer, actor=None, metadata={"keep": "me"})

    response = ops_client.post(f"{EDIT}?field=metadata", {"key": ["a"], "value": ["1"]})

    assert response.status_code == 422 and "This form is out of date" in page_text(response)
    assert metadata_of(customer) == {"keep": "me"}


# --- Customize (a custom product) -------------------------------------------------------------------


@pytest.fixture
def acme_on_pro(customer, catalogue):
    cp = product_attach(customer=customer, product=catalogue["pro"], actor=None)
    balance_track(customer=customer, feature=catalogue["messages"], value=1200, actor=None)
    return cp


def customize_url(cp) -> str:
    return f"/customers/acme_corp/products/{cp.pk}/customize/"


def custom_products(customer) -> int:
    return Product.objects.filter(custom_for=customer).count()


@pytest.mark.parametrize("htmx", [False, True], ids=["plain form", "htmx"])
def test_stale_customize_form_after_a_balance_edit_is_a_conflict(
    ops_client, acme_on_pro, customer, catalogue, support, htmx
):
    extra = HTMX if htmx else {}
    opened = ops_client.get(customize_url(acme_on_pro), **extra)
    messages = Balance.objects.get(customer_product=acme_on_pro, feature=catalogue["messages"])
    balance_set(balance=messages, new_balance=6000, actor=support, reason="goodwill")  # meanwhile
    entries = audit_count()

    response = ops_client.post(
        customize_url(acme_on_pro), form_values(opened, included_messages="10000", reason="enterprise deal"), **extra
    )

    html = page_text(response)
    assert response.status_code == 409
    assert (
        "Pro changed since you opened this form: the Messages balance was edited (by sam_support, just now): "
        "granted is now 7,200 (was 5,000). Check the new figures and try again."
    ) in html
    assert 'value="10000"' in html and "enterprise deal" in html  # the entries are kept
    assert custom_products(customer) == 0 and audit_count() == entries
    assert CustomerProduct.objects.get(pk=acme_on_pro.pk).status == "active"
    # Having seen the new figures, submitting again creates the custom product.
    again = ops_client.post(customize_url(acme_on_pro), form_values(response), **extra)
    assert again.status_code == (200 if htmx else 302)
    new_cp = CustomerProduct.objects.get(customer=customer, status="active", product__product_id="pro")
    assert new_cp.product.is_custom
    assert Balance.objects.get(customer_product=new_cp, feature=catalogue["messages"]).allowance == 10000


def test_stale_customize_form_after_the_allowances_changed_is_a_conflict(ops_client, acme_on_pro, customer, catalogue):
    opened = ops_client.get(customize_url(acme_on_pro))
    catalogue["pro"].items.filter(feature=catalogue["messages"]).update(included=Decimal(8000))  # catalogue edit

    response = ops_client.post(
        customize_url(acme_on_pro), form_values(opened, included_seats="20", reason="more seats")
    )

    assert response.status_code == 409
    assert "Messages now has an allowance of 8,000 (was 5,000)" in page_text(response)
    assert custom_products(customer) == 0


def test_stale_customize_form_after_the_product_was_replaced_is_a_conflict(ops_client, acme_on_pro, customer, ops):
    opened = ops_client.get(customize_url(acme_on_pro))
    first = ops_client.post(customize_url(acme_on_pro), form_values(opened, included_seats="20", reason="seats"))
    assert first.status_code == 302
    entries = audit_count()

    response = ops_client.post(customize_url(acme_on_pro), form_values(opened, included_seats="30", reason="x"))

    assert response.status_code == 409
    assert "Pro was replaced or ended since you opened this form (by olivia_ops, just now)." in page_text(response)
    assert custom_products(customer) == 1 and audit_count() == entries


def test_tracked_usage_since_the_customize_form_opened_is_no_conflict(ops_client, acme_on_pro, customer, catalogue):
    opened = ops_client.get(customize_url(acme_on_pro))
    balance_track(customer=customer, feature=catalogue["messages"], value=300, actor=None)  # carried over

    response = ops_client.post(
        customize_url(acme_on_pro), form_values(opened, included_messages="10000", reason="deal")
    )

    assert response.status_code == 302
    new_cp = CustomerProduct.objects.get(customer=customer, status="active", product__product_id="pro")
    assert Balance.objects.get(customer_product=new_cp, feature=catalogue["messages"]).usage == 1500


@pytest.mark.parametrize(
    "tampered",
    [
        "",
        "[]",
        '{"items": {}}',
        '{"items": {}, "balances": {"x": "1"}}',
        '{"items": {"messages": "NaN"}, "balances": {}}',
    ],
)
def test_customize_post_without_what_it_was_based_on_is_refused(ops_client, acme_on_pro, customer, tampered):
    response = ops_client.post(
        customize_url(acme_on_pro),
        {"included_messages": "9000", "included_seats": "10", "reason": "x", "expected": tampered},
    )

    assert response.status_code == 422
    assert "This form is out of date: reopen it to see the current allowances." in page_text(response)
    assert custom_products(customer) == 0


# --- what the form showed, tampered with ---------------------------------------------------------------

DEEP = {
    "lists": "[" * 2000 + "]" * 2000,
    "objects": '{"a": ' * 2000 + "1" + "}" * 2000,
    "in the metadata": '{"k": ' + "[" * 2000 + "]" * 2000 + "}",
}


@pytest.mark.parametrize("expected", list(DEEP.values()), ids=list(DEEP))
def test_metadata_form_with_a_deeply_nested_expected_value_is_refused_and_changes_nothing(
    ops_client, customer, expected
):
    customer_update(customer=customer, actor=None, metadata={"keep": "me"})
    entries = audit_count()

    response = ops_client.post(f"{EDIT}?field=metadata", {"key": ["a"], "value": ["1"], "expected": expected})

    assert response.status_code == 422
    assert "This form is out of date: reopen it to see the current value." in page_text(response)
    assert metadata_of(customer) == {"keep": "me"} and audit_count() == entries


@pytest.mark.parametrize("expected", list(DEEP.values()), ids=list(DEEP))
def test_customize_form_with_a_deeply_nested_expected_value_is_refused_and_changes_nothing(
    ops_client, acme_on_pro, customer, expected
):
    entries = audit_count()

    response = ops_client.post(
        customize_url(acme_on_pro),
        {"included_messages": "9000", "included_seats": "10", "reason": "x", "expected": expected},
    )

    assert response.status_code == 422
    assert "This form is out of date: reopen it to see the current allowances." in page_text(response)
    assert custom_products(customer) == 0 and audit_count() == entries


def test_metadata_nested_as_deeply_as_allowed_still_saves(ops_client, customer):
    from customers.validation import METADATA_MAX_DEPTH

    deep = {"x": "1"}
    for _ in range(METADATA_MAX_DEPTH - 1):
        deep = {"x": deep}
    customer_update(customer=customer, actor=None, metadata={"deep": deep["x"]})
    opened = ops_client.get(f"{EDIT}?field=metadata")

    response = ops_client.post(f"{EDIT}?field=metadata", rows(opened, plan="gold"))

    assert response.status_code == 302
    assert metadata_of(customer) == {"deep": deep["x"], "plan": "gold"}


# --- a balance edit over a balance that Customize replaced ----------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["plain form", "htmx"])
def test_balance_edit_after_customize_replaced_the_balance_is_a_conflict_saying_what_changed(
    ops_client, acme_on_pro, customer, catalogue, support, htmx
):
    from billing.services.products import product_customize

    extra = HTMX if htmx else {}
    old = Balance.objects.get(customer_product=acme_on_pro, feature=catalogue["messages"])
    opened = ops_client.get(f"/customers/acme_corp/balances/{old.pk}/edit/", **extra)
    product_customize(  # meanwhile, in another tab
        customer=customer,
        customer_product=acme_on_pro,
        items=[{"feature": catalogue["messages"], "included": Decimal(10000)}],
        actor=support,
        reason="enterprise deal",
    )
    new = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    entries = audit_count()

    response = ops_client.post(
        f"/customers/acme_corp/balances/{old.pk}/edit/",
        form_values(opened, value="2000", reason="goodwill"),
        **extra,
    )

    html = page_text(response)
    assert response.status_code == 409
    assert (
        "This balance was replaced since you opened it: the plan was customized (by sam_support, just now). "
        "The Messages balance is now 8,800 left of 10,000 granted. Check the new figures and try again."
    ) in html
    assert 'value="2000"' in html and "goodwill" in html  # the entries are kept
    assert f'action="/customers/acme_corp/balances/{new.pk}/edit/"' in html  # the popup is now the new balance's
    assert ("<html" in html) is not htmx
    assert Balance.objects.get(pk=new.pk).remaining == 8800 and audit_count() == entries
    # Having seen the new figures, saving again edits the balance that replaced it.
    again = ops_client.post(f"/customers/acme_corp/balances/{new.pk}/edit/", form_values(response), **extra)
    assert again.status_code == (200 if htmx else 302)
    assert Balance.objects.get(pk=new.pk).remaining == 2000


def test_balance_edit_of_a_balance_that_never_was_this_customers_is_not_found(ops_client, acme_on_pro, globex):
    other = Balance.objects.filter(customer=globex).first()

    response = ops_client.post(
        f"/customers/acme_corp/balances/{other.pk}/edit/",
        {"mode": "set", "value": "1", "reason": "x", "expected_remaining": "100"},
    )

    assert response.status_code == 404
    assert Balance.objects.get(pk=other.pk).remaining == other.remaining
