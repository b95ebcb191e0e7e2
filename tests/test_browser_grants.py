"""Create Balance in Chromium: support grants a one-off top-up with an expiry, tracks draw it down beside the
plan's balance, and once it has expired it is gone from the page and from balances.check."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.models import Balance
from billing.services.track import balance_track
from customers.services.api_keys import api_key_create
from tests.test_browser_actions import feature_row, log_in, open_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_support_grants_an_expiring_top_up_that_tracks_draw_down_and_that_goes_once_expired(
    live_server, page: Page, support, customer, catalogue
):
    messages = catalogue["messages"]
    log_in(page, live_server, support)
    open_customer(page, live_server)

    page.locator("#section-features").get_by_role("link", name="Create Balance").click()
    dialog = page.get_by_role("dialog", name="Create Balance")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Feature").select_option(label="Messages")
    dialog.get_by_label("Amount").fill("50")
    dialog.get_by_label("Never resets").check()
    expires = timezone.localtime() + timedelta(days=3)
    dialog.get_by_label("Expires at").fill(expires.strftime("%Y-%m-%dT%H:%M"))
    dialog.get_by_role("button", name="Create Balance").click()
    expect(dialog.get_by_role("alert")).to_contain_text("reason")  # a reason is required: nothing was granted
    assert not Balance.objects.filter(customer=customer, customer_product__isnull=True).exists()
    dialog.get_by_label("Reason").fill("Outage on 3 Dec")
    dialog.get_by_role("button", name="Create Balance").click()

    expect(page.locator("dialog")).to_have_count(0)
    expect(page.locator(".toast")).to_have_text("Granted 50 Messages to Acme Corp.")
    row = feature_row(page, "messages")
    expect(row.locator("td.balance")).to_contain_text("150")
    expect(row.locator("td.source")).to_contain_text("Granted until")
    expect(page.locator("#section-sidebar-activity")).to_contain_text("Outage on 3 Dec")

    # Tracks draw the grant down first: it expires before the plan's monthly reset.
    balance_track(customer=customer, feature=messages, value=Decimal(60), actor=None)
    page.reload()
    expect(feature_row(page, "messages").locator("td.balance")).to_contain_text("90")
    expect(feature_row(page, "messages").locator("td.source")).to_contain_text("Granted until")
    grant = Balance.objects.get(customer=customer, customer_product__isnull=True)
    assert grant.remaining == 0

    # Once its expiry has passed it is gone from the page and from checks; its usage stays in the events.
    Balance.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page.reload()
    row = feature_row(page, "messages")
    expect(row.locator("td.balance")).to_contain_text("90")
    expect(row.locator("td.balance")).to_contain_text("/ 100")
    expect(row.locator("td.source")).not_to_contain_text("Granted")
    expect(page.locator("#section-events")).to_contain_text("60")
    _, raw_key = api_key_create(env="sandbox", name="Backend", actor=None)
    check = httpx.post(
        f"{live_server.url}/v1/balances.check",
        json={"customer_id": "acme_corp", "feature_id": "messages"},
        headers={"Authorization": f"Bearer {raw_key}"},
    ).json()
    assert (check["balance"]["granted"], check["balance"]["remaining"]) == (100, 90)
    assert [b["plan_id"] for b in check["balance"]["breakdown"]] == ["free"]
