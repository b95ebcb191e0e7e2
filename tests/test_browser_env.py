"""Two tabs, two environments, in Chromium: a Delete popup opened for sandbox `twin`, submitted after the other
tab switched to live, deletes no one and says so in a popup of its own; reloaded, the page acts in live."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from customers.models import Customer
from customers.services.customers import customer_create
from tests.test_browser_actions import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_delete_popup_of_sandbox_twin_submitted_after_another_tab_switched_to_live_deletes_no_one(
    live_server, page: Page, ops, catalogue
):
    customer_create(env="sandbox", customer_id="twin", actor=None, name="Sandbox twin")
    customer_create(env="live", customer_id="twin", actor=None, name="Live twin")
    log_in(page, live_server, ops)
    page.goto(f"{live_server.url}/customers/twin/")
    page.wait_for_function("window.htmx !== undefined")
    page.locator("#settings-menu summary").click()
    page.locator("#settings-menu").get_by_role("link", name="Delete").click()
    popup = page.locator("dialog#delete-popup")
    expect(popup).to_contain_text("Sandbox twin")
    popup.get_by_label("Type").fill("twin")

    other = page.context.new_page()  # another tab of the same session
    other.goto(f"{live_server.url}/customers/")
    other.get_by_role("button", name="Live").click()
    expect(other.get_by_role("button", name="Live")).to_have_attribute("aria-pressed", "true")

    popup.get_by_role("button", name="Delete").click()

    refused = page.locator("dialog#env-changed-popup")
    expect(refused).to_be_visible()
    expect(refused).to_contain_text(
        "This form was opened in Sandbox; you have since switched to Live. Nothing was done. "
        "Reload the page to act in Live."
    )
    assert Customer.objects.filter(customer_id="twin", deleted_at__isnull=True).count() == 2
    refused.get_by_role("link", name="Reload the page").click()
    expect(page.get_by_role("heading", name="Live twin", level=1)).to_be_visible()


def test_a_popup_opened_from_a_sandbox_page_after_another_tab_switched_to_live_shows_no_live_customer(
    live_server, page: Page, ops, catalogue
):
    customer_create(env="sandbox", customer_id="twin", actor=None, name="Sandbox twin")
    customer_create(env="live", customer_id="twin", actor=None, name="Live twin")
    log_in(page, live_server, ops)
    page.goto(f"{live_server.url}/customers/twin/")
    page.wait_for_function("window.htmx !== undefined")
    other = page.context.new_page()
    other.goto(f"{live_server.url}/customers/")
    other.get_by_role("button", name="Live").click()
    expect(other.get_by_role("button", name="Live")).to_have_attribute("aria-pressed", "true")

    page.locator("#settings-menu summary").click()
    page.locator("#settings-menu").get_by_role("link", name="Delete").click()

    refused = page.locator("dialog#env-changed-popup")
    expect(refused).to_contain_text("This page was shown in Sandbox; you have since switched to Live.")
    expect(page.locator("dialog#delete-popup")).to_have_count(0)
    assert "Live twin" not in page.content()
