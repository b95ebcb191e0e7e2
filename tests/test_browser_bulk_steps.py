"""The bulk flow in steps, in Chromium: rows ticked on two pages of the list stay ticked and are counted in
the bulk bar, and the bulk page for one action shows that action's fields only."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from customers.services.customers import customer_create
from tests.test_browser_actions import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1024, 1280, 1920])
def test_ticked_rows_are_counted_and_kept_across_pages_and_the_action_shows_only_its_fields(
    live_server, page: Page, ops, catalogue, discount_rewards, width
):
    for i in range(55):
        customer_create(env="sandbox", customer_id=f"row_{i:02d}", actor=None, name=f"Row {i:02d}")
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, live_server, ops)
    page.goto(f"{live_server.url}/customers/?sort=name")

    page.get_by_label("Select row_00").check()
    expect(page.locator("#ticked-count")).to_have_text("1 ticked")
    page.get_by_role("link", name="Next →").click()
    page.get_by_label("Select row_54").check()
    expect(page.locator("#ticked-count")).to_have_text("2 ticked")
    page.get_by_role("link", name="← Previous").click()
    expect(page.get_by_label("Select row_00")).to_be_checked()  # kept while on the other page
    expect(page.locator("#ticked-count")).to_have_text("2 ticked")

    page.get_by_label("Action", exact=True).select_option(label="Add Coupon")
    page.get_by_role("button", name="Preview…").click()

    expect(page.locator("#bulk-selection")).to_have_text("For 2 selected customers.")
    expect(page.get_by_label("Coupon")).to_be_visible()
    for other in ("Feature", "Amount", "Product", "Resets"):
        expect(page.get_by_label(other, exact=True)).to_have_count(0)
    page.get_by_label("Coupon").select_option(label="20% off")
    page.get_by_label("Reason (required").fill("Spring promo")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("#preview-sample tbody tr")).to_have_count(2)
    expect(page.locator("#preview-sample")).to_contain_text("Row 54")
    run = page.get_by_role("button", name="Run on 2 customers")
    expect(run).to_be_in_viewport()
    # Nothing spills out of its card.
    spill = page.evaluate(
        "() => [...document.querySelectorAll('.card')].filter(c => c.scrollWidth > c.clientWidth + 1).length"
    )
    assert spill == 0
