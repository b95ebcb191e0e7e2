"""Screenshots of the screens issue 30 changed, at 1280×800, with demo-like data: the Overview, the bulk flow
(the action first, then the preview), a job's page, the customer page, the Attach popup and a usage chart.

They are saved in `tmp_path`, or with SCREENSHOTS=docs/screenshots in that folder (how the README's were made);
each must be a small PNG."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.models import Balance, BulkJob, CustomerProduct
from billing.services import bulk
from billing.services.plans import GRANT_FREE, plan_attach
from billing.services.track import balance_track
from customers.models import Customer
from customers.services.customers import customer_create
from tests.test_browser_actions import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAMES = ["Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Soylent"]


def _demo(catalogue, ops) -> None:
    for i, name in enumerate(NAMES):
        slug = name.lower().replace(" ", "_")
        email = f"billing@{slug.replace('_', '-')}.test"
        c = customer_create(env="sandbox", customer_id=slug, actor=None, name=name, email=email)
        if i % 2 == 0:
            plan_attach(customer=c, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="demo")
            balance_track(customer=c, feature=catalogue["api_calls"], value=Decimal(40000 + 25000 * i), actor=None)
        balance_track(customer=c, feature=catalogue["messages"], value=Decimal(10 + 7 * i), actor=None)
    CustomerProduct.objects.filter(customer__customer_id="globex").update(
        status="trialing", trial_ends_at=timezone.now() + timedelta(days=4)
    )
    CustomerProduct.objects.filter(customer__customer_id="hooli").update(status="past_due")
    job = bulk.bulk_job_start(
        env="sandbox",
        customers=Customer.objects.filter(env="sandbox"),
        got=bulk.bulk_input(bulk.ADD_BALANCE, {"feature": "api_calls", "amount": "5000"}),
        actor=ops,
        reason="Launch week top-up",
        filter_text="all customers matching: product scale",
    )
    bulk.bulk_job_run(job.pk)


def test_screenshots_of_the_changed_screens(live_server, page: Page, ops, catalogue, tmp_path):
    _demo(catalogue, ops)
    out = Path(os.environ.get("SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server, ops)

    def shot(name: str) -> None:
        page.screenshot(path=str(out / f"{name}.png"))

    page.goto(f"{live_server.url}/overview/")
    expect(page.locator("#overview-overage")).to_contain_text("API calls")
    shot("overview")

    page.goto(f"{live_server.url}/bulk/?product=scale&scope=all")
    shot("bulk-1-action")
    page.get_by_label("Add to balance").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Feature").select_option(label="API calls")
    page.get_by_label("Amount").fill("1000")
    page.get_by_label("Reason (required").fill("Launch week top-up")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("#bulk-preview")).to_be_visible()
    page.locator("#bulk-preview").scroll_into_view_if_needed()
    shot("bulk-2-preview")

    page.goto(f"{live_server.url}/jobs/{BulkJob.objects.get().pk}/")
    shot("job")

    page.goto(f"{live_server.url}/customers/acme_corp/")
    shot("customer")
    page.locator("#section-products").get_by_role("link", name="Attach Product").click()
    dialog = page.get_by_role("dialog", name="Attach product")
    dialog.get_by_label("Product").select_option(label="Pro · plan")
    expect(dialog.get_by_role("button", name="Attach")).to_be_in_viewport()
    shot("attach-popup")

    api_calls = Balance.objects.get(customer__customer_id="acme_corp", feature=catalogue["api_calls"])
    Balance.objects.filter(pk=api_calls.pk).update(remaining=-20000, overage_allowed=True)
    page.goto(f"{live_server.url}/customers/acme_corp/usage/api_calls/?range=7")
    shot("usage-chart")

    for png in out.glob("*.png"):
        assert png.stat().st_size < 400_000, png
    assert len(list(out.glob("*.png"))) >= 7
