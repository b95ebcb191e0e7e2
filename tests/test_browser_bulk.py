"""Bulk actions in Chromium, run by the real worker: ops filter the customers low on API calls, select all
of them, preview Add to balance, run it with a reason, watch the progress bar reach 100 %, and find the
audit line naming the job on a customer's page."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.models import Balance, BulkJob
from billing.services.plans import GRANT_FREE, plan_attach
from customers.models import Customer
from customers.services.customers import customer_create
from tests.test_browser_actions import log_in
from tests.test_bulk_worker import start_grant_job, start_worker, thousand, wait_for  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_ops_add_to_the_balance_of_everyone_low_on_api_calls_and_watch_the_job(
    live_server,
    page: Page,
    ops,
    catalogue,
    start_worker,  # noqa: F811
):
    now = timezone.now()
    for i in range(30):
        c = customer_create(env="sandbox", customer_id=f"team_{i:02d}", actor=None, name=f"Team {i:02d}")
        plan_attach(customer=c, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="x")
        Customer.objects.filter(pk=c.pk).update(created_at=now)
        # 12 of them have used more than 90 % of their 100,000 API calls.
        Balance.objects.filter(customer=c, feature=catalogue["api_calls"]).update(remaining=500 if i < 12 else 60000)
    start_worker()
    log_in(page, live_server, ops)

    page.goto(f"{live_server.url}/customers/")
    page.get_by_label("Feature").select_option(label="API calls")
    page.get_by_label("Balance").select_option(label="Remaining below % of granted")
    page.get_by_label("N", exact=True).fill("10")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#result-count")).to_have_text("12 customers match these filters")
    assert "balance=below_pct" in page.url and "value=10" in page.url  # bookmarkable

    page.get_by_label("All 12 customers matching these filters").check()
    page.get_by_label("Action", exact=True).select_option(label="Add to balance")
    page.get_by_role("button", name="Preview…").click()

    expect(page.locator("#bulk-selection")).to_contain_text(
        "all customers matching: api_calls: remaining below % of granted 10 %"
    )
    expect(page.get_by_label("Feature")).to_have_value("api_calls")
    page.get_by_label("Amount").fill("1,000")
    page.get_by_label("Reason (required").fill("Launch week top-up")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("#will-change")).to_have_text("12")
    expect(page.locator("#bulk-preview tbody tr").first).to_have_text("Team 00team_005001,500")
    page.get_by_role("button", name="Run on 12 customers").click()

    job = BulkJob.objects.get()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {job.pk}: Add to balance")
    expect(page.locator("#job-percent")).to_have_text("100 %", timeout=30_000)  # the page polls as it runs
    expect(page.locator("#job-status")).to_have_text("Done")
    expect(page.locator("#job-counts")).to_contain_text("done 12 · skipped 0 · failed 0")
    assert page.locator("#job-bar").get_attribute("value") == "12"

    page.get_by_role("link", name="team_03").click()
    activity = page.locator("#section-sidebar-activity")
    expect(activity).to_contain_text(
        f"{ops.username} added to API calls: 500 → 1,500 · Launch week top-up · job #{job.pk}"
    )
    expect(activity.get_by_role("link", name=f"job #{job.pk}")).to_be_visible()


def test_ops_cancel_a_running_job_while_its_progress_refreshes(
    live_server,
    page: Page,
    ops,
    thousand,  # noqa: F811
    start_worker,  # noqa: F811
):
    job = start_grant_job(ops)
    start_worker()
    wait_for(lambda: BulkJob.objects.get(pk=job.pk).processed >= 20, timeout=90, what="the job to start")
    log_in(page, live_server, ops)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    first = page.locator("#job-percent").inner_text()
    expect(page.locator("#job-percent")).not_to_have_text(first, timeout=10_000)  # the progress has refreshed

    page.get_by_role("button", name="Cancel job").click()

    expect(page.locator("#job-status")).to_have_text("Cancelled", timeout=10_000)
    expect(page.locator("#job-stopped")).to_contain_text(f"Cancelled by {ops.username} after")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    expect(page.locator("#job-cancelling")).to_have_count(0)
    assert "stopping" not in page.content()
    job.refresh_from_db()
    assert job.status == "cancelled" and job.processed < 1000
