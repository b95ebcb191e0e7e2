"""Screenshots of the screens issue 30 changed, at 1280×800, with demo-like data: the Overview, the bulk flow
(the action first, then the preview), a job's page and the Jobs list, the customers list with its saved views,
the customer page, the Attach popup, the Details edited together, a usage chart and a credit pool's chart split
by feature, and the API key's revoke popup.

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
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from customers.services.saved_views import saved_view_create
from tests.conftest import on_the_ai_plan
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


def test_screenshots_of_the_changed_screens(live_server, page: Page, ops, credits_catalogue, tmp_path):
    catalogue = credits_catalogue
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

    page.goto(f"{live_server.url}/jobs/")
    expect(page.locator("#jobs")).to_contain_text("Add to balance: 5,000 API calls")
    shot("jobs")

    saved_view_create(owner=ops, env="sandbox", name="On Scale", query="product=scale", shared=False)
    saved_view_create(owner=ops, env="sandbox", name="Trials", query="status=trialing", shared=True)
    page.goto(f"{live_server.url}/customers/?product=scale")
    expect(page.locator(".saved-views .chip.active")).to_contain_text("On Scale")
    shot("customers-saved-views")

    page.goto(f"{live_server.url}/customers/acme_corp/")
    page.locator("#section-sidebar-details").get_by_role("link", name="Edit email").click()
    expect(page.get_by_role("textbox", name="Email")).to_be_focused()
    page.locator("#section-sidebar-details").scroll_into_view_if_needed()
    shot("details-edit")

    pool = on_the_ai_plan("soylent_ai", catalogue, ops, name="Soylent AI")
    for day, (images, messages) in enumerate([(9, 14), (4, 30), (12, 22), (6, 40), (15, 25)]):
        when = timezone.now() - timedelta(days=4 - day)
        balance_track(customer=pool, feature=catalogue["images"], value=Decimal(images), actor=None, timestamp=when)
        balance_track(customer=pool, feature=catalogue["messages"], value=Decimal(messages), actor=None, timestamp=when)
    page.goto(f"{live_server.url}/customers/soylent_ai/usage/ai_credits/?range=7")
    expect(page.locator("#usage-chart")).to_contain_text("Images")
    shot("usage-chart-credits")

    api_key_create(env="sandbox", name="Backend worker", actor=ops)
    page.goto(f"{live_server.url}/api-keys/")
    page.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_role("dialog", name="Revoke “Backend worker”?")).to_be_visible()
    shot("api-key-revoke")

    for png in out.glob("*.png"):
        assert png.stat().st_size < 400_000, png
    assert len(list(out.glob("*.png"))) >= 12
