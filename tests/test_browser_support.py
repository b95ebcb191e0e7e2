"""The support tools walked in Chromium: support records usage and checks a balance from a balance row's menu,
ops creates a customer from the list, and every role opens the customer object."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from billing.models import Balance, CustomerProduct
from customers.models import AuditEntry, Customer
from tests.test_browser_actions import feature_row, log_in, open_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _row_menu(page: Page, feature_id: str, item: str) -> None:
    row = feature_row(page, feature_id)
    row.get_by_label(re.compile("Actions for")).click()  # the menu's <summary>
    row.get_by_role("link", name=item).click()


def test_support_records_usage_and_checks_a_balance_from_the_row_menu(live_server, page: Page, support, customer):
    log_in(page, live_server, support)
    open_customer(page, live_server)

    _row_menu(page, "messages", "Record usage")
    dialog = page.get_by_role("dialog", name="Record Usage")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Value").fill("40")
    dialog.get_by_label("Properties").fill('{"ticket": "T-1"}')
    dialog.get_by_role("button", name="Record Usage").click()
    expect(dialog.get_by_text("A reason is required.")).to_be_visible()  # refused, the popup stays
    dialog.get_by_label("Reason").fill("Usage lost in an outage")
    dialog.get_by_role("button", name="Record Usage").click()

    expect(page.locator("dialog")).to_have_count(0)
    expect(feature_row(page, "messages").locator("td.balance")).to_contain_text("60")
    expect(page.locator(".toast")).to_have_text("Recorded 40 Messages usage for Acme Corp.")
    expect(page.locator("#section-sidebar-activity")).to_contain_text("Usage lost in an outage")
    assert Balance.objects.get(customer=customer, feature__feature_id="messages").remaining == 60

    _row_menu(page, "messages", "Check balance")
    dialog = page.get_by_role("dialog", name="Check Balance")
    expect(dialog.get_by_label("Required balance")).to_have_value("1")
    dialog.get_by_label("Required balance").fill("61")
    dialog.get_by_role("button", name="Check Balance").click()

    expect(dialog).to_contain_text("Not allowed")
    answer = json.loads(dialog.locator("#check-answer-json").input_value())
    assert answer["allowed"] is False and answer["balance"]["remaining"] == 60 and answer["required_balance"] == 61
    assert AuditEntry.objects.filter(action="balance.check_run", actor_user=support).count() == 1


def test_ops_creates_a_customer_from_the_list(live_server, page: Page, ops, catalogue):
    log_in(page, live_server, ops)
    page.wait_for_function("window.htmx !== undefined")

    page.get_by_role("link", name="Create Customer").click()
    dialog = page.get_by_role("dialog", name="Create Customer")
    expect(dialog).to_be_visible()
    dialog.get_by_label("ID").fill("new_co")
    dialog.get_by_label("Name").fill("New Co")
    dialog.get_by_label("Email").fill("hi@new.test")
    dialog.get_by_label("Key 1").fill("source")
    dialog.get_by_label("Value 1").fill("support")
    dialog.get_by_role("button", name="Create Customer").click()

    page.wait_for_url(re.compile(r".*/customers/new_co/$"))
    expect(page.get_by_role("heading", name="New Co", level=1)).to_be_visible()
    created = Customer.objects.get(customer_id="new_co")
    assert created.metadata == {"source": "support"} and created.env == "sandbox"
    assert CustomerProduct.objects.filter(customer=created, product__product_id="free").exists()


@pytest.mark.parametrize("role", ["viewer", "support", "ops"])
def test_every_role_opens_the_customer_object(request, live_server, page: Page, customer, role):
    log_in(page, live_server, request.getfixturevalue(role))
    open_customer(page, live_server)

    page.get_by_role("link", name="Show customer object").click()
    dialog = page.get_by_role("dialog", name="Customer Object")
    expect(dialog).to_be_visible()
    shown = json.loads(dialog.locator("#customer-object-json").input_value())
    assert shown["id"] == "acme_corp" and shown["balances"]["messages"]["remaining"] == 100
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_role("button", name="Copied")).to_be_visible()
