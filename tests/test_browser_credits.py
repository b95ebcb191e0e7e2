"""In a real browser at 1280 px: a credit pool on the customer page, the features that draw from it, and
the balance popup editing it like any balance."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from billing.models import Balance
from billing.services.track import balance_track
from tests.test_browser_actions import feature_row, log_in, open_customer
from tests.test_browser_plans import OVERFLOW

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("PLAN_SCREENSHOTS")


def test_ops_sees_the_pool_with_its_costs_and_edits_it_in_the_popup(
    live_server, page: Page, ops, ai_customer, credits_catalogue
):
    balance_track(customer=ai_customer, feature=credits_catalogue["messages"], value=15, actor=None)
    balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=5, actor=None)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    pool = feature_row(page, "ai_credits")
    expect(pool.locator("td.balance")).to_contain_text("96")
    expect(pool.locator(".credit-schema")).to_contain_text("Images 0.6 credits each · Messages 0.2 credits each")
    expect(pool).to_contain_text("4 credits used")
    expect(feature_row(page, "messages")).to_contain_text("Then from AI credits at 0.2 credits each")
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "credit-pool.png"), full_page=True)
    assert page.evaluate(OVERFLOW) == []

    pool.locator("td.usage").click()
    dialog = page.get_by_role("dialog", name="AI credits balance")
    expect(dialog.locator("[data-figure=usage]")).to_have_text("4")
    dialog.get_by_role("textbox", name="New balance").fill("150.5")
    dialog.get_by_label("Reason").fill("Launch bonus")
    dialog.get_by_role("button", name="Update").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(pool.locator("td.balance")).to_contain_text("150.5")
    expect(pool.locator(".credit-schema")).to_contain_text("Messages 0.2 credits each")  # still after the swap
    stored = Balance.objects.get(customer=ai_customer, feature=credits_catalogue["ai_credits"])
    assert (stored.remaining, stored.usage) == (150.5, 4)
