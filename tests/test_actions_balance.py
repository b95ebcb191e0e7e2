"""The balance popup through the test client: what it shows, what it stores, what it refuses."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Balance, Product, ProductItem
from billing.services.balances import balance_set
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.models import AuditEntry
from tests.helpers import page_text

HTMX = {"HTTP_HX_REQUEST": "true"}


def edit_url(customer, balance) -> str:
    return f"/customers/{customer.customer_id}/balances/{balance.pk}/edit/"


def balance_of(customer, feature) -> Balance:
    return Balance.objects.get(customer=customer, feature=feature)


def post_edit(client, customer, balance, *, htmx=False, **data):
    balance.refresh_from_db()
    form = {
        "mode": "set",
        "value": "",
        "reason": "goodwill after outage",
        "expected_remaining": str(balance.remaining),
        "next_reset_at": "",
    }
    form.update(data)
    return client.post(edit_url(customer, balance), form, **(HTMX if htmx else {}))


def balance_edits(balance) -> int:
    return AuditEntry.objects.filter(
        target_type="balance", target_id=str(balance.pk), action__in=["balance.set", "balance.add"]
    ).count()


# --- what the popup shows --------------------------------------------------------------------------


def test_popup_shows_figures_reset_note_and_custom_product_offer(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])
    balance_track(customer=customer, feature=catalogue["messages"], value=30, actor=None)

    response = ops_client.get(edit_url(customer, messages), **HTMX)

    assert response.status_code == 200
    html = page_text(response)
    assert html.lstrip().startswith("<dialog") and "<html" not in html  # just the popup for htmx
    assert "Messages balance" in html
    assert '<dd data-figure="granted">100</dd>' in html
    assert '<dd data-figure="usage">30</dd>' in html
    assert '<dd data-figure="remaining">70</dd>' in html
    assert "An edit lasts only until the next reset date" in html
    assert f"/customers/acme_corp/products/{messages.customer_product_id}/customize/" in html
    assert ">Update</button>" in html
    assert "Messages doesn't allow overage, so it can't go below 0." in html


def test_popup_without_javascript_is_a_full_page_with_a_plain_form(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = ops_client.get(edit_url(customer, messages))

    html = page_text(response)
    assert response.status_code == 200
    assert "<html" in html and "<dialog" in html and " open " in html.split("<dialog", 1)[1].split(">", 1)[0] + " "
    assert f'action="{edit_url(customer, messages)}"' in html
    assert "hx-post" not in html
    assert 'name="preview"' in html  # "Preview" shows the invoice effect without JavaScript


def test_popup_lists_the_last_five_edits_newest_first(ops_client, ops, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])
    for n in range(1, 7):
        balance_set(balance=messages, new_balance=100 + n, actor=ops, reason=f"edit number {n}")

    html = page_text(ops_client.get(edit_url(customer, messages)))

    assert "edit number 6" in html and "edit number 2" in html
    assert "edit number 1" not in html
    assert html.index("edit number 6") < html.index("edit number 5")
    assert "105 → 106" in html and "olivia_ops" in html


def test_popup_previews_the_next_invoice_for_overage(ops_client, acme_on_scale, catalogue):
    api_calls = balance_of(acme_on_scale, catalogue["api_calls"])
    url = edit_url(acme_on_scale, api_calls) + "?preview=1&mode=set&value=-5000"

    response = ops_client.get(url, **HTMX)

    html = page_text(response)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="balance-impact"')
    assert "Next invoice: API calls overage 0 → 5,000; total $250.00 → <strong>$255.00</strong> (+$5.00)." in html
    # usage is never rewritten: the charged 5,000 come out of granted
    assert "granted 100,000 → <strong>−5,000</strong>, remaining 100,000 → <strong>−5,000</strong>" in html
    assert "usage stays 0" in html


def test_the_live_preview_refuses_a_negative_balance_where_overage_is_not_allowed(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])  # the free plan: no overage
    url = edit_url(customer, messages) + "?preview=1&mode=set&value=-5"

    html = page_text(ops_client.get(url, **HTMX))

    assert (
        "A negative balance is only possible where overage is allowed, and this feature doesn't allow it. "
        "Update would be refused." in html
    )
    assert "After the update" not in html  # no figures for what can't happen
    refused = post_edit(ops_client, customer, messages, value="-5")  # and the server does refuse it
    assert refused.status_code == 422 and "only possible where overage is allowed" in page_text(refused)


def test_preview_without_javascript_changes_nothing(ops_client, acme_on_scale, catalogue):
    api_calls = balance_of(acme_on_scale, catalogue["api_calls"])

    response = post_edit(ops_client, acme_on_scale, api_calls, value="-1500", preview="1")

    assert response.status_code == 200
    assert "total $250.00 → <strong>$252.00</strong> (+$2.00)" in page_text(response)  # a started 1,000 counts
    api_calls.refresh_from_db()
    assert api_calls.remaining == 100000 and balance_edits(api_calls) == 0


# --- what "Update" stores ----------------------------------------------------------------------------


def test_update_sets_the_balance_and_keeps_recorded_usage(ops_client, ops, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])
    balance_track(customer=customer, feature=catalogue["messages"], value=30, actor=None)

    response = post_edit(ops_client, customer, messages, value="500")

    assert response.status_code == 302 and response.url == "/customers/acme_corp/"
    messages.refresh_from_db()
    assert (messages.remaining, messages.granted, messages.usage) == (Decimal(500), Decimal(530), Decimal(30))
    entry = AuditEntry.objects.get(action="balance.set", target_id=str(messages.pk))
    assert entry.actor_user == ops and entry.reason == "goodwill after outage"
    assert (entry.before["remaining"], entry.after["remaining"]) == (70, 500)
    assert entry.customer == customer


def test_add_to_balance_takes_a_delta(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, mode="add", value="25.5")

    assert response.status_code == 302
    messages.refresh_from_db()
    assert messages.remaining == Decimal("125.5") and messages.adjustment == Decimal("25.5")
    assert AuditEntry.objects.filter(action="balance.add", target_id=str(messages.pk)).exists()


def test_negative_balance_charges_overage_where_allowed(ops_client, acme_on_scale, catalogue):
    api_calls = balance_of(acme_on_scale, catalogue["api_calls"])

    response = post_edit(ops_client, acme_on_scale, api_calls, value="-2000")

    assert response.status_code == 302
    api_calls.refresh_from_db()
    assert api_calls.remaining == -2000 and api_calls.overage == 2000


def test_update_can_move_the_next_reset_date(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])
    new_reset = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)

    response = post_edit(
        ops_client, customer, messages, value="150", next_reset_at=new_reset.strftime("%Y-%m-%dT%H:%M")
    )

    assert response.status_code == 302
    messages.refresh_from_db()
    assert messages.next_reset_at == new_reset and messages.remaining == 150


# --- bad input: the popup again with a clear message, nothing stored ----------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "The new balance is required."),
        ("lots", "The new balance must be a number, not 'lots'."),
        ("NaN", "The new balance must be a number, not NaN."),
        ("infinity", "The new balance must be a finite number."),
        ("-Infinity", "The new balance must be a finite number."),
        ("1.1234567", "The new balance may have at most 6 decimals."),
        ("1000000000000001", "The new balance must be between -1,000,000,000,000,000 and 1,000,000,000,000,000."),
        ("-1e16", "The new balance must be between"),
        ("-5", "A negative balance is only possible where overage is allowed"),
    ],
)
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_bad_new_balance_reshows_the_popup_and_stores_nothing(ops_client, customer, catalogue, value, message, htmx):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, value=value, htmx=htmx)

    assert response.status_code == 422
    html = page_text(response)
    assert message in html
    assert ("<html" in html) is not htmx and "Messages balance" in html
    assert f'value="{value}"' in html or value == ""  # what they typed is still there to correct
    messages.refresh_from_db()
    assert (messages.remaining, messages.adjustment) == (Decimal(100), Decimal(0))
    assert balance_edits(messages) == 0


def test_bad_amount_to_add_names_the_amount(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, mode="add", value="ten")

    assert response.status_code == 422
    assert "The amount to add must be a number" in page_text(response)


def test_adding_beyond_the_largest_balance_is_refused(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, mode="add", value="1000000000000000")

    assert response.status_code == 422
    assert "beyond the largest balance" in page_text(response)
    messages.refresh_from_db()
    assert messages.remaining == 100 and balance_edits(messages) == 0


def test_adding_below_zero_without_overage_is_refused(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, mode="add", value="-101")

    assert response.status_code == 422
    assert "only possible where overage is allowed" in page_text(response)
    messages.refresh_from_db()
    assert messages.remaining == 100


def test_missing_reason_is_refused(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, value="150", reason="   ")

    assert response.status_code == 422 and "A reason is required." in page_text(response)
    messages.refresh_from_db()
    assert messages.remaining == 100 and balance_edits(messages) == 0


def test_unlimited_balance_cannot_be_edited(ops_client, customer, catalogue):
    unlimited = Product.objects.create(product_id="unlimited_msgs", name="Unlimited messages", is_add_on=True)
    ProductItem.objects.create(product=unlimited, feature=catalogue["api_calls"], unlimited=True)
    product_attach(customer=customer, product=unlimited, actor=None)
    balance = balance_of(customer, catalogue["api_calls"])

    page = page_text(ops_client.get(edit_url(customer, balance)))
    response = post_edit(ops_client, customer, balance, value="10")

    assert "This balance is unlimited: there is nothing to edit." in page
    assert response.status_code == 422
    assert "This balance is unlimited and can't be edited." in page_text(response)
    balance.refresh_from_db()
    assert balance.remaining == 0 and balance_edits(balance) == 0


def test_reset_date_in_the_past_is_refused(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])
    reset_before = messages.next_reset_at
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    response = post_edit(ops_client, customer, messages, value="150", next_reset_at=past)

    assert response.status_code == 422
    assert "The next reset date must be in the future." in page_text(response)
    messages.refresh_from_db()
    assert messages.remaining == 100 and messages.next_reset_at == reset_before


def test_unreadable_reset_date_is_refused(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, value="150", next_reset_at="next tuesday")

    assert response.status_code == 422 and "Enter a valid date/time." in page_text(response)
    messages.refresh_from_db()
    assert messages.remaining == 100


def test_reset_date_on_a_lifetime_balance_is_refused(ops_client, customer, catalogue):
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    seats = balance_of(customer, catalogue["seats"])
    future = (timezone.now() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")

    page = page_text(ops_client.get(edit_url(customer, seats)))
    response = post_edit(ops_client, customer, seats, value="12", next_reset_at=future)

    assert 'name="next_reset_at"' not in page  # a lifetime balance offers no reset date
    assert "This balance never resets" in page
    assert response.status_code == 422
    assert "This balance never resets (lifetime), so it has no reset date." in page_text(response)
    seats.refresh_from_db()
    assert seats.remaining == 10 and seats.next_reset_at is None


def test_change_since_the_popup_opened_is_refused_then_applies_to_new_figures(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])
    opened_at = str(messages.remaining)
    balance_track(customer=customer, feature=catalogue["messages"], value=40, actor=None)  # meanwhile

    response = ops_client.post(
        edit_url(customer, messages),
        {"mode": "set", "value": "200", "reason": "goodwill", "expected_remaining": opened_at},
    )

    html = page_text(response)
    assert response.status_code == 409
    assert "This balance changed since you opened it" in html
    assert '<dd data-figure="remaining">60</dd>' in html  # the new figures
    messages.refresh_from_db()
    assert messages.remaining == 60 and balance_edits(messages) == 0
    # Having seen the new figures, submitting the re-shown form applies the edit.
    assert 'name="expected_remaining" value="60.000000"' in html or 'name="expected_remaining" value="60"' in html
    again = ops_client.post(
        edit_url(customer, messages),
        {"mode": "set", "value": "200", "reason": "goodwill", "expected_remaining": str(messages.remaining)},
    )
    assert again.status_code == 302
    messages.refresh_from_db()
    assert messages.remaining == 200


def test_tampered_expected_remaining_is_refused(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, value="150", expected_remaining="abc")

    assert response.status_code == 422 and "This form is out of date" in page_text(response)
    messages.refresh_from_db()
    assert messages.remaining == 100


@pytest.mark.parametrize("tampered", ["sNaN", "NaN", "Infinity", "-inf"])
def test_expected_remaining_that_is_not_a_finite_number_is_refused(ops_client, customer, catalogue, tampered):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, value="150", expected_remaining=tampered)

    assert response.status_code == 422 and "This form is out of date" in page_text(response)
    messages.refresh_from_db()
    assert messages.remaining == 100
    assert balance_edits(messages) == 0


def test_unknown_mode_is_refused(ops_client, customer, catalogue):
    messages = balance_of(customer, catalogue["messages"])

    response = post_edit(ops_client, customer, messages, mode="multiply", value="2")

    assert response.status_code == 422
    messages.refresh_from_db()
    assert messages.remaining == 100


# --- scoping -------------------------------------------------------------------------------------------


def test_balance_of_another_customer_is_not_found(ops_client, customer, other_customer, catalogue):
    theirs = balance_of(other_customer, catalogue["messages"])

    response = ops_client.post(
        edit_url(customer, theirs), {"mode": "set", "value": "1", "reason": "x", "expected_remaining": "100"}
    )

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.remaining == 100


def test_customer_of_the_other_environment_is_not_found(ops_client, customer, catalogue):
    from customers.services.customers import customer_create

    live = customer_create(env="live", customer_id="live_co", actor=None)
    balance = balance_of(live, catalogue["messages"])

    assert ops_client.get(edit_url(live, balance)).status_code == 404
