"""Refunding part of an invoice from the customer page, in Chromium, against the fake Stripe."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from billing.models import Invoice
from tests.test_browser_actions import log_in, open_customer
from tests.test_invoice_actions import stored

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ops_refunds_part_of_an_invoice_and_sees_it_partially_refunded(
    live_server, page: Page, ops, linked, fake_stripe
):
    invoice = stored(fake_stripe, linked, status="paid", total=9900)
    log_in(page, live_server, ops)
    open_customer(page, live_server)

    invoices = page.locator("#section-invoices")
    invoices.get_by_role("link", name=re.compile("^Details")).click()
    detail = page.get_by_role("dialog", name=re.compile("^Invoice of"))
    expect(detail).to_contain_text("1 × Subscription")
    expect(detail).to_contain_text("$99.00")
    detail.get_by_role("link", name="Refund").click()

    refund = page.get_by_role("dialog", name="Refund invoice")
    expect(refund).to_be_visible()
    refund.get_by_label("Amount (USD)").fill("25.00")
    refund.get_by_label("Reason (kept in the audit trail)").fill("outage last week")
    refund.get_by_role("button", name="Refund").click()

    expect(refund).to_be_hidden()
    expect(invoices).to_contain_text("Partially refunded")
    assert Invoice.objects.get(pk=invoice.pk).amount_refunded == 2500
    assert fake_stripe.payment_of(invoice.stripe_id)["amount_refunded"] == 2500
