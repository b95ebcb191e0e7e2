"""The dashboard as people use it, in Chromium: the popups keep their primary button on screen at 1280×800,
nothing spills out of its card on the busiest customer page from 1024 px up, and a slow request shows its busy
state (the clicked button disabled and marked, the region it will change aria-busy) until it is answered."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from autumn_admin.dashboard.views import balances as balance_views
from billing.services.balances import balance_create
from billing.services.entities import entity_create
from billing.services.plans import GRANT_FREE, plan_attach
from billing.services.products import product_customize
from billing.services.track import balance_track
from tests.test_browser_actions import log_in, open_customer
from tests.test_browser_plans import OVERFLOW

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _busiest(customer, catalogue, ops) -> None:
    """The customer page with the most on it: a customized plan, an add-on, a grant, usage, a scheduled plan."""
    scale = plan_attach(customer=customer, product=catalogue["scale"], actor=ops, method=GRANT_FREE, reason="x")
    product_customize(
        customer=customer,
        customer_product=scale.customer_product,
        items=[{"feature": catalogue["seats"], "included": 25}],
        actor=ops,
        reason="Enterprise seats",
    )
    plan_attach(customer=customer, product=catalogue["seats_addon"], actor=ops, method=GRANT_FREE, reason="x")
    balance_create(customer=customer, feature=catalogue["seats"], actor=ops, granted=5, reason="Goodwill seats")
    balance_track(customer=customer, feature=catalogue["api_calls"], value=Decimal(123456), actor=None)
    plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")
    entity_create(
        customer=customer,
        entity_id="workspace_with_a_rather_long_identifier_0001",
        name="The design team's shared workspace for the autumn launch",
        feature=catalogue["seats"],
        actor=ops,
    )


@pytest.mark.parametrize("width", [1024, 1280, 1920])
def test_no_table_spills_out_of_its_card_on_the_busiest_customer_page(
    live_server, page: Page, ops, customer, catalogue, width
):
    _busiest(customer, catalogue, ops)
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    assert page.evaluate(OVERFLOW) == []


def test_the_attach_and_create_balance_buttons_are_on_screen_at_1280_by_800(
    live_server, page: Page, ops, customer, catalogue
):
    _busiest(customer, catalogue, ops)
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, ops)
    open_customer(page, live_server)

    page.locator("#section-products").get_by_role("link", name="Attach Product").click()
    dialog = page.get_by_role("dialog", name="Attach product")
    dialog.get_by_label("Product").select_option(label="Free · plan")
    expect(dialog.locator(".plan-preview")).to_be_visible()
    expect(dialog.get_by_role("button", name="Attach")).to_be_in_viewport()
    expect(dialog.get_by_role("heading", name="Attach product")).to_be_in_viewport()
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)

    page.locator("#section-features").get_by_role("link", name="Create Balance").click()
    dialog = page.get_by_role("dialog", name="Create Balance")
    expect(dialog.get_by_role("button", name="Create Balance")).to_be_in_viewport()


def test_a_slow_request_shows_its_busy_state_until_it_is_answered(
    live_server, page: Page, ops, customer, catalogue, monkeypatch
):
    def slow_create(**kwargs):
        time.sleep(1.5)  # the server is slow today
        return balance_create(**kwargs)

    monkeypatch.setattr(balance_views, "balance_create", slow_create)
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    page.locator("#section-features").get_by_role("link", name="Create Balance").click()
    dialog = page.get_by_role("dialog", name="Create Balance")
    dialog.get_by_label("Feature").select_option(label="Messages")
    dialog.get_by_label("Amount").fill("50")
    dialog.get_by_label("Reason").fill("Outage on 3 Dec")
    button = dialog.get_by_role("button", name="Create Balance")

    button.click()

    expect(button).to_be_disabled()
    expect(button).to_have_attribute("aria-disabled", "true")
    expect(dialog).to_have_attribute("aria-busy", "true")
    expect(page.get_by_role("dialog")).to_have_count(0, timeout=10_000)  # answered: the popup closes
    expect(page.locator(".toast")).to_contain_text("Granted 50 Messages")


def test_esc_closes_menus_and_cancels_an_inline_edit_and_focus_returns_to_what_opened_a_popup(
    live_server, page: Page, ops, customer, catalogue
):
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, ops)
    open_customer(page, live_server)

    user_menu = page.locator("details.user-menu")
    user_menu.locator("summary").click()
    expect(user_menu).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(user_menu).not_to_have_attribute("open", "")
    expect(user_menu.locator("summary")).to_be_focused()

    details = page.locator("#section-sidebar-details")
    details.get_by_role("link", name="Edit name").click()
    name = details.get_by_role("textbox", name="Name")
    name.fill("Half typed")
    name.press("Escape")
    expect(details.get_by_role("textbox", name="Name")).to_have_count(0)
    expect(details).to_contain_text("Acme Corp")

    opener = page.locator("#section-features").get_by_role("link", name="Create Balance")
    opener.click()
    expect(page.get_by_role("dialog", name="Create Balance")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(opener).to_be_focused()


def test_clicking_anywhere_on_a_details_row_edits_it_and_metadata_rows_can_be_added(
    live_server, page: Page, ops, customer
):
    from customers.models import Customer

    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    details = page.locator("#section-sidebar-details")

    details.locator("dt", has_text="Email").click()  # the row, not the 14 px ✎
    expect(details.get_by_role("textbox", name="Email")).to_have_value("ada@acme.test")
    details.get_by_role("textbox", name="Email").press("Escape")
    expect(details.get_by_role("textbox", name="Email")).to_have_count(0)

    details.locator("dt", has_text="Metadata").click()
    details.get_by_role("button", name="Add a row").click()
    details.get_by_role("button", name="Add a row").click()
    expect(details.get_by_role("textbox", name="Key 4")).to_be_focused()
    details.get_by_role("textbox", name="Key 1").fill("tier")
    details.get_by_role("textbox", name="Value 1").fill("gold")
    details.get_by_role("textbox", name="Key 4").fill("region")
    details.get_by_role("textbox", name="Value 4").fill("eu")
    details.get_by_role("button", name="Update").click()
    expect(details).to_contain_text("region = eu")
    assert Customer.objects.get(pk=customer.pk).metadata == {"tier": "gold", "region": "eu"}


def test_ops_creates_and_deletes_an_entity_in_popups_that_fit_at_1280_by_800(
    live_server, page: Page, ops, customer, catalogue
):
    _busiest(customer, catalogue, ops)
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    card = page.locator("#section-entities")

    card.get_by_role("link", name="Create entity").click()
    dialog = page.get_by_role("dialog", name="Create entity")
    expect(dialog.get_by_role("button", name="Create entity")).to_be_in_viewport()
    dialog.get_by_label("ID").fill("user_bo")
    dialog.get_by_label("Name").fill("Bo")
    dialog.get_by_role("button", name="Create entity").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(card.get_by_role("row", name="Bo")).to_contain_text("user_bo")

    card.get_by_role("link", name="Delete entity Bo").click()
    dialog = page.get_by_role("dialog", name="Delete entity Bo")
    dialog.get_by_label("Reason").fill("Left the team")
    expect(dialog.get_by_role("button", name="Delete entity")).to_be_in_viewport()
    dialog.get_by_role("button", name="Delete entity").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(card.get_by_role("row", name="Bo")).to_have_count(0)
    assert page.evaluate(OVERFLOW) == []
