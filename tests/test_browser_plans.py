"""A customer's plan run from their page in Chromium: attach Pro with its preview, schedule a downgrade,
cancel at the end of the cycle and uncancel; support sees no buttons; nothing overflows at 1280 px."""

from __future__ import annotations

import os
import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from billing.models import CustomerProduct
from billing.services.plans import GRANT_FREE, plan_attach
from billing.services.track import balance_track
from customers.formatting import format_day
from tests.test_browser_actions import log_in, open_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("PLAN_SCREENSHOTS")  # a folder to save the 1280 px screenshots in, to look at them

OVERFLOW = """() => {
  const out = [];
  for (const card of document.querySelectorAll('.card')) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      const name = el.id || el.className || el.tagName;
      if (r.width && r.right > box.right + 1) out.push(name + ' in ' + (card.id || 'card'));
    }
  }
  return out;
}"""


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def _row(page: Page, name: str):
    return page.locator("#section-products tbody.product-row").filter(has=page.get_by_role("rowheader", name=name))


def test_ops_attaches_pro_to_a_free_customer_and_sees_the_preview_balances_and_audit_line(
    live_server, page: Page, ops, customer, catalogue
):
    page.set_viewport_size({"width": 1280, "height": 900})
    balance_track(customer=customer, feature=catalogue["messages"], value=Decimal(25), actor=None)
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    assert page.evaluate(OVERFLOW) == []
    _shot(page, "page-free")

    page.locator("#section-products").get_by_role("link", name="Attach Product").click()
    dialog = page.get_by_role("dialog", name="Attach product")
    dialog.get_by_label("Product").select_option(label="Pro · plan")
    preview = dialog.locator(".plan-preview")
    expect(preview).to_contain_text("Takes effect now")
    expect(preview.locator("tr", has_text="Messages")).to_contain_text("5,000")
    expect(preview.locator("tr", has_text="Messages")).to_contain_text("25")
    expect(preview.locator("tr", has_text="SSO")).to_contain_text("gained")
    expect(dialog.locator(".due-today")).to_have_text("$0.00")
    _shot(page, "attach-preview")
    dialog.get_by_role("textbox", name="Reason").fill("Design partner")
    dialog.get_by_role("button", name="Attach").click()

    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(_row(page, "Pro")).to_contain_text("Active")
    expect(_row(page, "Pro")).to_contain_text("granted")
    expect(page.locator("#balance-row-messages")).to_contain_text("4,975")
    expect(page.locator("#section-sidebar-activity")).to_contain_text("attached Pro (replacing Free)")
    assert page.evaluate(OVERFLOW) == []
    _shot(page, "page-pro")


def test_ops_schedules_a_downgrade_then_cancels_at_the_end_of_the_cycle_and_uncancels(
    live_server, page: Page, ops, customer, catalogue
):
    page.set_viewport_size({"width": 1280, "height": 900})
    plan_attach(customer=customer, product=catalogue["scale"], actor=ops, method=GRANT_FREE, reason="Deal")
    log_in(page, live_server, ops)
    open_customer(page, live_server)

    page.locator("#section-products").get_by_role("link", name="Attach Product").click()
    dialog = page.get_by_role("dialog", name="Attach product")
    dialog.get_by_label("Product").select_option(label="Pro · plan")
    expect(dialog.locator(".plan-preview")).to_contain_text("Scale shows Cancelling until then")
    expect(dialog.get_by_label("Attach now instead")).not_to_be_checked()
    dialog.get_by_role("textbox", name="Reason").fill("Cheaper")
    dialog.get_by_role("button", name="Attach").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(_row(page, "Scale")).to_contain_text("Cancelling")
    expect(_row(page, "Pro")).to_contain_text("Scheduled")
    assert page.evaluate(OVERFLOW) == []
    _shot(page, "page-scheduled")

    # Uncancel Scale: the downgrade is called off.
    _row(page, "Scale").get_by_label("Actions for Scale").click()
    _row(page, "Scale").get_by_role("link", name="Uncancel").click()
    dialog = page.get_by_role("dialog", name="Uncancel Scale")
    dialog.get_by_role("button", name="Uncancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(_row(page, "Scale")).to_contain_text("Active")
    expect(_row(page, "Pro")).to_have_count(0)

    # Cancel at the end of the billing cycle, then uncancel.
    _row(page, "Scale").get_by_label("Actions for Scale").click()
    _row(page, "Scale").get_by_role("link", name="Cancel").click()
    dialog = page.get_by_role("dialog", name="Cancel Scale")
    expect(dialog.get_by_label("At the end of the billing cycle")).to_be_checked()
    expect(dialog.locator(".plan-preview")).to_contain_text("balances run until then")
    _shot(page, "cancel-preview")
    dialog.get_by_label("Immediately").check()
    expect(dialog.locator(".plan-preview")).to_contain_text("Takes effect now")
    dialog.get_by_label("At the end of the billing cycle").check()
    expect(dialog.locator(".plan-preview")).to_contain_text("balances run until then")
    dialog.get_by_role("textbox", name="Reason").fill("Asked by email")
    dialog.get_by_role("button", name="Cancel product").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(_row(page, "Scale")).to_contain_text("Cancelling")
    scale = CustomerProduct.objects.get(customer=customer, product=catalogue["scale"])
    assert scale.canceled_at is not None

    _row(page, "Scale").get_by_label("Actions for Scale").click()
    _row(page, "Scale").get_by_role("link", name="Uncancel").click()
    page.get_by_role("dialog", name="Uncancel Scale").get_by_role("button", name="Uncancel").click()
    expect(_row(page, "Scale")).to_contain_text("Active")
    expect(page.locator("#section-sidebar-activity")).to_contain_text("uncancelled Scale")


def test_support_sees_the_products_but_no_plan_buttons(live_server, page: Page, support, customer, catalogue, ops):
    plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")
    log_in(page, live_server, support)
    open_customer(page, live_server)
    expect(_row(page, "Pro")).to_contain_text("Active")
    expect(page.get_by_role("link", name="Attach Product")).to_have_count(0)
    products = page.locator("#section-products")  # (the balance rows have Support's own menu: Record usage)
    expect(products.get_by_label(re.compile("^Actions for"))).to_have_count(0)


def test_a_busy_customer_page_fits_its_cards_at_1280_px(live_server, page: Page, ops, customer, catalogue):
    from billing.services.balances import balance_create
    from billing.services.products import product_customize

    page.set_viewport_size({"width": 1280, "height": 900})
    scale = plan_attach(customer=customer, product=catalogue["scale"], actor=ops, method=GRANT_FREE, reason="x")
    custom = product_customize(
        customer=customer,
        customer_product=scale.customer_product,
        items=[{"feature": catalogue["seats"], "included": 25}],
        actor=ops,
        reason="Enterprise seats",
    )
    plan_attach(customer=customer, product=catalogue["seats_addon"], actor=ops, method=GRANT_FREE, reason="x")
    balance_create(customer=customer, feature=catalogue["seats"], actor=ops, granted=5, reason="Goodwill seats")
    balance_track(customer=customer, feature=catalogue["api_calls"], value=Decimal(123456), actor=None)
    plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")  # scheduled
    assert custom.product.is_custom and custom.granted_free  # a custom version of a granted plan stays granted
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    _shot(page, "page-busy")
    assert page.evaluate(OVERFLOW) == []
    expect(page.locator("#section-upcoming-invoice")).not_to_contain_text("$250.00")  # granted: no charge


def test_ops_attaches_a_plan_with_a_free_trial_and_the_page_shows_trial_until_its_end(
    live_server, page: Page, ops, customer, catalogue
):
    from billing.models import Product

    Product.objects.filter(pk=catalogue["pro"].pk).update(trial_length=14, trial_unit="day")
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, ops)
    open_customer(page, live_server)
    page.locator("#section-products").get_by_role("link", name="Attach Product").click()
    dialog = page.get_by_role("dialog", name="Attach product")
    dialog.get_by_label("Product").select_option(label="Pro · plan")
    expect(dialog).to_contain_text("Pro starts with its free trial, until")
    expect(dialog.locator(".due-today")).to_have_text("$0.00")
    assert page.evaluate(OVERFLOW) == []
    dialog.get_by_role("button", name="Attach").click()

    expect(page.get_by_role("dialog")).to_have_count(0)
    cp = CustomerProduct.objects.get(customer=customer, product=catalogue["pro"])
    ends = format_day(cp.trial_ends_at)
    expect(_row(page, "Pro")).to_contain_text("Trial")
    expect(_row(page, "Pro")).to_contain_text(f"until {ends}")
    expect(page.locator("body")).to_contain_text(f"on a free trial until {ends}")
    assert cp.status == "trialing" and page.evaluate(OVERFLOW) == []
