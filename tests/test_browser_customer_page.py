"""In a real browser: find a customer from the list, open the page, read every section, load more events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Invoice, Reward
from billing.services.products import product_attach
from billing.services.rewards import reward_apply
from billing.services.track import balance_track
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def acme_with_history(customer, other_customer, catalogue, ops):
    now = timezone.now()
    product_attach(customer=customer, product=catalogue["pro"], actor=ops, now=now - timedelta(days=12))
    for i in range(40):
        at = now - timedelta(hours=7 * i)
        balance_track(
            customer=customer,
            feature=catalogue["messages"],
            value=i + 1,
            actor=None,
            timestamp=at,
            now=now,
            properties={"model": "fast"},
        )
    for _ in range(3):
        balance_track(customer=customer, feature=catalogue["seats"], value=1, actor=None, now=now)
    reward = Reward.objects.create(
        reward_id="launch20", name="Launch 20%", type="percentage_discount", value=20, duration="forever"
    )
    reward_apply(customer=customer, reward=reward, actor=ops)
    Invoice.objects.create(
        customer=customer,
        total=9900,
        status="paid",
        product_ids=["pro"],
        hosted_invoice_url="https://invoice.stripe.test/i/1",
        created_at=now - timedelta(days=12),
    )
    return customer


def test_find_a_customer_open_the_page_and_load_more_events(live_server, page, ops, acme_with_history):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/customers/")
    page.get_by_label("Username").fill(ops.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Customers", level=1)).to_be_visible()

    # "/" jumps to the search box from anywhere on the page.
    page.locator("body").click(position={"x": 700, "y": 400})
    page.keyboard.press("/")
    expect(page.locator("#global-search")).to_be_focused()
    page.keyboard.type("ACME")
    page.keyboard.press("Enter")
    expect(page.locator("#result-count")).to_have_text("1 customer matches these filters")
    page.get_by_role("link", name="Acme Corp").click()

    expect(page.get_by_role("heading", name="Acme Corp", level=1)).to_be_visible()
    for heading in (
        "Products",
        "Available Features",
        "Upcoming invoice",
        "Invoices",
        "Events",
        "Details",
        "Rewards",
        "Activity",
    ):
        expect(page.get_by_role("heading", name=heading, level=2)).to_be_visible()
    expect(page.locator("#section-products")).to_contain_text("Pro")
    expect(page.locator("#balance-row-messages svg.spark")).to_be_visible()
    assert page.locator("#balance-row-messages g.day").count() == 30
    expect(page.locator("#section-upcoming-invoice tr.total td")).to_have_text("$79.20")
    expect(page.locator("#section-invoices")).to_contain_text("$99.00")
    expect(page.locator("#section-sidebar-rewards")).to_contain_text("20% off · forever")
    expect(page.locator("#section-sidebar-activity")).to_contain_text("olivia_ops applied coupon Launch 20%")

    # The sidebar sits beside the main column at laptop width.
    main_box = page.locator(".main-col").bounding_box()
    side_box = page.locator(".side-col").bounding_box()
    assert side_box["x"] > main_box["x"] + main_box["width"] - 1

    rows = page.locator("#section-events tbody tr:not(.more-row)")
    expect(rows).to_have_count(25)
    url_before = page.url
    page.get_by_role("link", name="Load more events").click()
    expect(rows).to_have_count(43)
    expect(page.get_by_role("link", name="Load more events")).to_have_count(0)
    assert page.url == url_before  # loaded in place, by htmx
    expect(rows.last).to_contain_text("Messages")

    # Filtering by feature swaps the events section in place.
    page.get_by_label("Show events of").select_option("seats")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Seats")


def test_the_sandbox_band_and_switching_to_live(live_server, page, ops, acme_with_history):
    page.goto(f"{live_server.url}/customers/acme_corp/")
    page.get_by_label("Username").fill(ops.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("note")).to_contain_text("Sandbox")
    page.get_by_role("button", name="Live").click()
    expect(page.get_by_role("note")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("No customers in live yet.")
    page.goto(f"{live_server.url}/customers/acme_corp/")
    expect(page.get_by_role("heading", name="Customer not found")).to_be_visible()
