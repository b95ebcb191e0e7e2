"""The four flows of the "Managing Customers" documentation, walked step by step in Chromium."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.models import Balance, CustomerReward
from billing.services.track import balance_track
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_update
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Page, live_server, user) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/customers/$"))


def open_customer(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/customers/acme_corp/")
    expect(page.get_by_role("heading", name="Acme Corp", level=1)).to_be_visible()
    page.wait_for_function("window.htmx !== undefined")


def feature_row(page: Page, feature_id: str):
    return page.locator(f"#balance-row-{feature_id}")


# --- Editing Feature Balances ----------------------------------------------------------------------------


def test_editing_a_feature_balance(live_server, page: Page, ops, customer, catalogue):
    balance_track(customer=customer, feature=catalogue["messages"], value=30, actor=None)
    log_in(page, live_server, ops)

    # 1. Navigate to the Customer details page
    open_customer(page, live_server)
    features = page.locator("#section-features")
    expect(features.get_by_role("heading", name="Available Features")).to_be_visible()
    expect(feature_row(page, "messages")).to_contain_text("70")

    # 2. Under "Available Features", click on the feature (anywhere on its row)
    feature_row(page, "messages").locator("td.usage").click()
    dialog = page.get_by_role("dialog", name="Messages balance")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-figure=granted]")).to_have_text("100")
    expect(dialog.locator("[data-figure=usage]")).to_have_text("30")
    expect(dialog.locator("[data-figure=remaining]")).to_have_text("70")
    expect(dialog).to_contain_text("An edit lasts only until the next reset date")
    expect(dialog.get_by_role("link", name="create a custom product")).to_be_visible()

    # 3. In the popup, enter the new balance value (positive: more allowance)
    dialog.get_by_role("textbox", name="New balance").fill("500")
    expect(dialog.locator("#balance-impact")).to_contain_text("granted 100 → 530")  # live preview
    # 4. Optionally, set a new usage reset date for the feature
    new_reset = (timezone.localtime() + timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)
    dialog.get_by_label("Next reset").fill(new_reset.strftime("%Y-%m-%dT%H:%M"))
    dialog.get_by_label("Reason").fill("outage on 3 Dec")
    # 5. Click "Update"
    dialog.get_by_role("button", name="Update").click()

    expect(page.locator("dialog")).to_have_count(0)  # the popup closed
    row = feature_row(page, "messages")
    expect(row.locator("td.balance")).to_contain_text("500")
    expect(row.locator("td.balance")).to_contain_text("/ 530")
    expect(row).to_contain_text("manual edit")  # the graph marks it
    expect(page.locator("#section-sidebar-activity")).to_contain_text("outage on 3 Dec")
    expect(page.locator(".toast")).to_have_text("Messages balance is now 500.")
    stored = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    assert (stored.remaining, stored.granted, stored.usage) == (Decimal(500), Decimal(530), Decimal(30))
    assert stored.next_reset_at == new_reset
    assert AuditEntry.objects.get(action="balance.set").actor_user == ops


def test_negative_balance_charges_usage_and_updates_the_upcoming_invoice(
    live_server, page: Page, ops, acme_on_scale, catalogue
):
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    invoice = page.locator("#section-upcoming-invoice")
    expect(invoice).to_contain_text("$250.00")

    feature_row(page, "api_calls").get_by_role("link", name="API calls").click()
    dialog = page.get_by_role("dialog", name="API calls balance")
    dialog.get_by_role("textbox", name="New balance").fill("-2500")
    expect(dialog.locator("#balance-impact")).to_contain_text("total $250.00 → $253.00 (+$3.00)")
    dialog.get_by_label("Reason").fill("usage the importer missed")
    dialog.get_by_role("button", name="Update").click()

    expect(page.locator("dialog")).to_have_count(0)
    expect(invoice).to_contain_text("API calls overage")
    expect(invoice.locator("tfoot")).to_contain_text("$253.00")
    expect(feature_row(page, "api_calls")).to_contain_text("2,500 over")
    assert Balance.objects.get(customer=acme_on_scale, feature=catalogue["api_calls"]).remaining == -2500


def test_bad_balance_input_is_shown_in_the_popup_and_esc_closes_it(live_server, page: Page, ops, customer, catalogue):
    log_in(page, live_server, ops)
    open_customer(page, live_server)

    feature_row(page, "messages").get_by_role("link", name="Messages").click()
    dialog = page.get_by_role("dialog", name="Messages balance")
    dialog.get_by_role("textbox", name="New balance").fill("-5")
    dialog.get_by_label("Reason").fill("testing")
    dialog.get_by_role("button", name="Update").click()

    # The server's answer (an alert beside the field), not the live preview's note that it would be refused.
    expect(dialog.get_by_role("alert")).to_contain_text("A negative balance is only possible where overage is allowed")
    expect(dialog.get_by_role("textbox", name="New balance")).to_have_value("-5")
    dialog.get_by_role("textbox", name="New balance").fill("NaN")
    dialog.get_by_role("button", name="Update").click()
    expect(dialog).to_contain_text("The new balance must be a number, not NaN.")

    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)
    assert Balance.objects.get(customer=customer, feature=catalogue["messages"]).remaining == 100
    assert not AuditEntry.objects.filter(action__startswith="balance.s").exists()


def test_add_to_balance_mode(live_server, page: Page, ops, customer, catalogue):
    log_in(page, live_server, ops)
    open_customer(page, live_server)

    feature_row(page, "messages").get_by_role("link", name="Messages").click()
    dialog = page.get_by_role("dialog", name="Messages balance")
    dialog.get_by_label("Add to balance").check()
    dialog.get_by_role("textbox", name="Amount to add").fill("25")
    dialog.get_by_label("Reason").fill("referral bonus")
    dialog.get_by_role("button", name="Update").click()

    expect(page.locator("dialog")).to_have_count(0)
    expect(feature_row(page, "messages").locator("td.balance")).to_contain_text("125")
    assert Balance.objects.get(customer=customer, feature=catalogue["messages"]).remaining == 125


# --- Adding a Coupon ---------------------------------------------------------------------------------------


def test_adding_a_coupon(live_server, page: Page, ops, customer, catalogue, discount_rewards):
    from billing.services.products import product_attach

    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    log_in(page, live_server, ops)

    # 1. Go to the customer's details page
    open_customer(page, live_server)
    rewards = page.locator("#section-sidebar-rewards")
    expect(rewards).to_contain_text("No coupons applied.")
    # 2. Under the "Rewards" section of the sidebar, click "Add Coupon"
    rewards.get_by_role("link", name="Add Coupon").click()
    dialog = page.get_by_role("dialog", name="Add Coupon")
    expect(dialog).to_contain_text("$10.00 off · once")
    expect(dialog).not_to_contain_text("Old promo")
    # 3. Select a reward from the available options
    dialog.get_by_label("20% off").check()
    # 4. Click "Add Reward"
    dialog.get_by_role("button", name="Add Reward").click()

    expect(page.locator("dialog")).to_have_count(0)
    expect(rewards).to_contain_text("20% off · 3 months · until")
    invoice = page.locator("#section-upcoming-invoice")
    expect(invoice).to_contain_text("−$19.80")
    expect(invoice.locator("tfoot")).to_contain_text("$79.20")
    applied = CustomerReward.objects.get(customer=customer)
    assert applied.reward == discount_rewards["twenty"] and applied.applied_by == ops

    # The same reward again is refused in the popup.
    rewards.get_by_role("link", name="Add Coupon").click()
    dialog = page.get_by_role("dialog", name="Add Coupon")
    dialog.get_by_label("20% off").check()
    dialog.get_by_role("button", name="Add Reward").click()
    expect(dialog).to_contain_text("Acme Corp already has 20% off.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("dialog")).to_have_count(0)

    # Ops can remove it.
    rewards.get_by_role("link", name="Remove 20% off").click()
    page.get_by_role("dialog", name="Remove reward").get_by_role("button", name="Remove").click()
    expect(rewards).to_contain_text("No coupons applied.")
    assert CustomerReward.objects.get(customer=customer).removed_at is not None


# --- Updating Customer Properties ----------------------------------------------------------------------------


def test_updating_customer_properties(live_server, page: Page, ops, customer):
    log_in(page, live_server, ops)

    # 1. Navigate to the customer's details page
    open_customer(page, live_server)
    details = page.locator("#section-sidebar-details")
    expect(details.get_by_role("heading", name="Details")).to_be_visible()
    # 2. Click on any of the fields
    details.get_by_role("link", name="Edit name").click()
    # 3. Update the desired fields, in place
    name = details.get_by_role("textbox", name="Name")
    expect(name).to_have_value("Acme Corp")
    name.fill("Mr New Name")
    # 4. Click "Update"
    details.get_by_role("button", name="Update").click()

    expect(details).to_contain_text("Mr New Name")
    expect(details.get_by_role("textbox", name="Name")).to_have_count(0)  # back to the read-only view
    expect(page.get_by_role("heading", level=1)).to_have_text("Mr New Name")
    assert Customer.objects.get(pk=customer.pk).name == "Mr New Name"

    # An invalid email stays in the form with its message; nothing is stored.
    details.get_by_role("link", name="Edit email").click()
    details.get_by_role("textbox", name="Email").fill("not-an-email")
    details.get_by_role("button", name="Update").click()
    expect(details).to_contain_text("'not-an-email' is not a valid email address.")
    details.get_by_role("textbox", name="Email").fill("newemail@example.com")
    details.get_by_role("button", name="Update").click()
    expect(details).to_contain_text("newemail@example.com")
    assert Customer.objects.get(pk=customer.pk).email == "newemail@example.com"

    # Metadata as key/value rows.
    details.get_by_role("link", name="Edit metadata").click()
    details.get_by_label("Key 1").fill("plan_tier")
    details.get_by_label("Value 1").fill("gold")
    details.get_by_role("button", name="Update").click()
    expect(details).to_contain_text("plan_tier = gold")
    assert Customer.objects.get(pk=customer.pk).metadata == {"plan_tier": "gold"}

    # A new id moves the page.
    details.get_by_role("link", name="Edit ID").click()
    details.get_by_role("textbox", name="ID").fill("acme_new")
    details.get_by_role("button", name="Update").click()
    page.wait_for_url(re.compile(r".*/customers/acme_new/$"))
    assert Customer.objects.get(pk=customer.pk).customer_id == "acme_new"


def test_stale_details_edit_shows_the_conflict_and_the_current_value(live_server, page: Page, ops, support, customer):
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    details = page.locator("#section-sidebar-details")
    details.get_by_role("link", name="Edit email").click()
    email = details.get_by_role("textbox", name="Email")
    expect(email).to_have_value("ada@acme.test")
    # Meanwhile, in another tab, a colleague changes the email.
    customer_update(customer=customer, actor=support, email="billing@acme.test", expected={"email": "ada@acme.test"})

    email.fill("ada.new@acme.test")
    details.get_by_role("button", name="Update").click()

    expect(details.get_by_role("alert")).to_have_text(
        "The email changed since you opened it (by sam_support, just now): it is now “billing@acme.test”. "
        "Check it and update again to replace it."
    )
    expect(email).to_have_value("ada.new@acme.test")  # what was typed is kept
    assert Customer.objects.get(pk=customer.pk).email == "billing@acme.test"
    assert AuditEntry.objects.filter(action="customer.update").count() == 1
    # Having read it, updating again replaces it.
    details.get_by_role("button", name="Update").click()
    expect(details.get_by_role("textbox", name="Email")).to_have_count(0)
    expect(details).to_contain_text("ada.new@acme.test")
    assert Customer.objects.get(pk=customer.pk).email == "ada.new@acme.test"


# --- Deleting a Customer --------------------------------------------------------------------------------------


def test_deleting_and_restoring_a_customer(live_server, page: Page, ops, customer, catalogue):
    balance_track(customer=customer, feature=catalogue["messages"], value=3, actor=None)
    log_in(page, live_server, ops)

    # 1. Go to the customer's details page
    open_customer(page, live_server)
    # 2. Click the "Settings" icon in the top right
    page.get_by_title("Settings").click()
    # 3. Click "Delete"
    page.get_by_role("link", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog", name="Delete customer")
    expect(dialog).to_contain_text("1 active product")
    expect(dialog).to_contain_text("1 feature balance")
    expect(dialog).to_contain_text("1 event")
    expect(dialog).to_contain_text("0 invoices")
    expect(dialog).to_contain_text("This does not delete the customer in Stripe.")
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog).to_contain_text("Type acme_corp exactly to confirm.")
    dialog.get_by_label("Type acme_corp to confirm").fill("acme_corp")
    dialog.get_by_role("button", name="Delete").click()

    page.wait_for_url(re.compile(r".*/customers/$"))
    expect(page.locator(".messages")).to_contain_text("Deleted Acme Corp (acme_corp).")
    expect(page.get_by_role("link", name="Acme Corp")).to_have_count(0)
    assert Customer.objects.get(pk=customer.pk).deleted_at is not None

    page.get_by_role("link", name="Deleted customers").click()
    page.get_by_role("row", name=re.compile("acme_corp")).get_by_role("button", name="Restore").click()
    page.wait_for_url(re.compile(r".*/customers/acme_corp/$"))
    expect(page.get_by_role("heading", name="Acme Corp", level=1)).to_be_visible()
    assert Customer.objects.get(pk=customer.pk).deleted_at is None
    assert Balance.objects.get(customer=customer).usage == 3


# --- Custom product --------------------------------------------------------------------------------------------


def test_custom_product_from_the_products_section(live_server, page: Page, ops, customer, catalogue):
    log_in(page, live_server, ops)
    open_customer(page, live_server)

    page.locator("#section-products").get_by_role("link", name="Customize Free for Acme Corp").click()
    dialog = page.get_by_role("dialog", name="Customize Free")
    dialog.get_by_label("New Messages allowance").fill("2000")
    dialog.get_by_label("Feature", exact=True).select_option(label="SSO")
    dialog.get_by_label("Reason").fill("pilot deal")
    dialog.get_by_role("button", name="Create custom product").click()

    expect(page.locator("dialog")).to_have_count(0)
    expect(page.locator("#section-products")).to_contain_text("custom")
    expect(feature_row(page, "messages").locator("td.balance")).to_contain_text("/ 2,000")
    expect(feature_row(page, "sso")).to_contain_text("Enabled")


# --- Roles ---------------------------------------------------------------------------------------------------


def test_support_agent_edits_a_balance_but_sees_no_other_controls(
    live_server, page: Page, support, customer, catalogue, discount_rewards
):
    log_in(page, live_server, support)
    open_customer(page, live_server)

    expect(page.get_by_title("Settings")).to_have_count(0)
    expect(page.get_by_role("link", name="Add Coupon")).to_have_count(0)
    expect(page.locator("#section-sidebar-details").get_by_role("link")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^Customize"))).to_have_count(0)

    feature_row(page, "messages").locator("td.usage").click()
    dialog = page.get_by_role("dialog", name="Messages balance")
    expect(dialog).to_contain_text("ask ops to create a custom product")
    dialog.get_by_role("textbox", name="New balance").fill("90")
    dialog.get_by_label("Reason").fill("ticket 4411")
    dialog.get_by_role("button", name="Update").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(feature_row(page, "messages").locator("td.balance")).to_contain_text("90")
    assert AuditEntry.objects.get(action="balance.set").actor_user == support


def test_viewer_sees_no_controls(live_server, page: Page, viewer, customer, catalogue):
    log_in(page, live_server, viewer)
    open_customer(page, live_server)

    expect(page.get_by_title("Settings")).to_have_count(0)
    expect(page.get_by_role("link", name="Add Coupon")).to_have_count(0)
    expect(page.locator("#section-sidebar-details").get_by_role("link")).to_have_count(0)
    expect(feature_row(page, "messages").get_by_role("link")).to_have_count(0)
    feature_row(page, "messages").locator("td.usage").click()
    expect(page.locator("dialog")).to_have_count(0)
    page.goto(f"{live_server.url}/customers/acme_corp/balances/{Balance.objects.get(customer=customer).pk}/edit/")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


# --- Without JavaScript ------------------------------------------------------------------------------------


@pytest.fixture
def no_js_page(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_balance_edit_and_coupon_work_without_javascript(
    live_server, no_js_page: Page, ops, customer, catalogue, discount_rewards
):
    page = no_js_page
    log_in(page, live_server, ops)
    page.goto(f"{live_server.url}/customers/acme_corp/")

    feature_row(page, "messages").get_by_role("link", name="Messages").click()
    page.wait_for_url(re.compile(r"/balances/\d+/edit/$"))
    page.get_by_role("textbox", name="New balance").fill("-1")
    page.get_by_label("Reason").fill("no js")
    page.get_by_role("button", name="Update").click()
    expect(page.locator("body")).to_contain_text("A negative balance is only possible")
    page.get_by_role("textbox", name="New balance").fill("300")
    page.get_by_role("button", name="Update").click()
    page.wait_for_url(re.compile(r".*/customers/acme_corp/$"))
    expect(page.locator(".messages")).to_contain_text("Messages balance is now 300.")
    expect(feature_row(page, "messages").locator("td.balance")).to_contain_text("300")

    page.get_by_role("link", name="Add Coupon").click()
    page.get_by_label("$10 off").check()
    page.get_by_role("button", name="Add Reward").click()
    page.wait_for_url(re.compile(r".*/customers/acme_corp/$"))
    expect(page.locator("#section-sidebar-rewards")).to_contain_text("$10 off")

    page.get_by_role("link", name="Edit name").click()
    page.get_by_role("textbox", name="Name").fill("Acme Plain")
    page.get_by_role("button", name="Update").click()
    page.wait_for_url(re.compile(r".*/customers/acme_corp/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Plain")

    page.get_by_title("Settings").click()
    page.get_by_role("link", name="Delete", exact=True).click()
    page.get_by_label("Type acme_corp to confirm").fill("acme_corp")
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r".*/customers/$"))
    assert Customer.objects.get(pk=customer.pk).deleted_at is not None
