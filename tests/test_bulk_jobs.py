"""Bulk actions on the customers list: the preview (will change, skipped and why, a sample), the job that
runs them (each customer once, through the single edit's service, audited with the job's id), its page
(progress, counts, reasons, Cancel), the Jobs page, and environments kept apart."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Balance, BulkJob, BulkJobItem, CustomerProduct, CustomerReward
from billing.services import bulk, bulk_run
from billing.services.plans import GRANT_FREE, plan_attach
from billing.services.rewards import reward_apply
from customers.audit import AuditAction
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_create, customer_delete
from tests.html import element, page_of, text


@pytest.fixture
def team(catalogue):
    """Five sandbox customers on the free plan (Messages 100 a month), two also on Scale; one live one."""
    made = [customer_create(env="sandbox", customer_id=f"cus_{i}", actor=None, name=f"Cus {i}") for i in range(5)]
    for c in made[:2]:
        plan_attach(customer=c, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="x")
    live = customer_create(env="live", customer_id="cus_live", actor=None)
    return {"sandbox": made, "live": live}


R = {"reason": "x"}


def run_form(client, data):
    return client.post("/bulk/", {**data, "run": "1"})


def test_preview_says_how_many_change_which_are_skipped_and_why_with_a_sample(client, ops, team, catalogue):
    client.force_login(ops)
    customer_delete(customer=team["sandbox"][4], actor=None)
    ticked = [c.pk for c in team["sandbox"]] + [team["live"].pk]
    data = {
        "ids": ticked,
        "action": "add_balance",
        "act_feature": "api_calls",
        "act_amount": "1000",
        "reason": "outage",
    }

    page = page_of(client.post("/bulk/", {**data, "preview": "1"}))

    preview = text(element(page, "bulk-preview"))
    assert "Preview: Add to balance: 1,000 API calls" in preview
    assert "2 customers will change, of 6 selected." in preview
    # Each reason with the customers it skips, named (never another environment's), most first.
    assert text(element(page, "will-skip")) == (
        "2 · feature not on their plan: cus_2 (Cus 2), cus_3 (Cus 3) 1 · other environment "
        "1 · deleted since: cus_4 (Cus 4)"
    )
    assert "cus_live" not in preview
    assert "Cus 0 cus_0 100,000 101,000" in preview and "Cus 1 cus_1 100,000 101,000" in preview
    assert "Run on 2 customers" in preview
    assert not BulkJob.objects.exists()  # a preview changes nothing


def test_a_reason_is_required_and_bad_inputs_name_the_field(client, ops, team):
    client.force_login(ops)
    base = {"scope": "all", "action": "add_balance", "act_feature": "messages"}
    response = client.post("/bulk/", {**base, "act_amount": "10", "preview": "1"})
    assert response.status_code == 422 and "A reason is required" in page_of(response)
    response = client.post("/bulk/", {**base, "act_amount": "lots", "reason": "x", "run": "1"})
    assert response.status_code == 422 and "amount must be a number, not 'lots'." in text(page_of(response))
    response = client.post("/bulk/", {"scope": "all", "action": "add_coupon", "act_reward": "nope", "reason": "x"})
    assert response.status_code == 422 and "Choose an active coupon." in page_of(response)
    assert client.post("/bulk/", {"action": "add_balance"}).status_code == 400  # nothing selected
    assert not BulkJob.objects.exists()


def test_add_to_balance_runs_once_per_customer_through_the_single_edit_audited_with_the_job(
    client, ops, team, catalogue
):
    client.force_login(ops)
    response = run_form(
        client,
        {
            "scope": "all",
            "q": "cus_",
            "action": "add_balance",
            "act_feature": "messages",
            "act_amount": "50",
            "reason": "outage",
        },
    )
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert (job.total, job.status, job.env, job.filter_text) == (
        5,
        "queued",
        "sandbox",
        "all customers matching: search “cus_”",
    )

    bulk.bulk_job_run(job.pk)
    bulk.bulk_job_run(job.pk)  # run again (as after a crash): nothing applies twice

    job.refresh_from_db()
    assert (job.status, job.done, job.skipped, job.failed) == ("done", 5, 0, 0)
    entries = AuditEntry.objects.filter(job_id=job.pk, action=AuditAction.BALANCE_ADD)
    assert sorted(e.customer_ref for e in entries) == [f"cus_{i}" for i in range(5)]
    assert {e.reason for e in entries} == {"outage"}
    assert {e.after["remaining"] - e.before["remaining"] for e in entries} == {50}
    for e in entries:
        assert Balance.objects.get(pk=e.target_id).remaining == e.after["remaining"]
    assert {e.actor_label for e in entries} == {ops.username}
    assert not Balance.objects.filter(customer=team["live"], remaining=150).exists()  # live untouched

    page = page_of(client.get(f"/jobs/{job.pk}/"))
    assert text(element(page, "job-percent")) == "100 %"
    assert "done 5 · skipped 0 · failed 0" in text(element(page, "job-counts"))
    assert 'hx-trigger="every 1s"' not in page  # finished: no more polling
    jobs = text(element(page_of(client.get("/jobs/")), "jobs"))
    assert f"#{job.pk} Add to balance: 50 Messages {ops.username}" in jobs and "(5) 5 0 0 Done" in jobs


def test_coupon_and_product_jobs_skip_those_who_already_have_them(client, ops, team, catalogue, discount_rewards):
    client.force_login(ops)
    reward_apply(customer=team["sandbox"][0], reward=discount_rewards["twenty"], actor=None)
    run_form(client, {"scope": "all", "action": "add_coupon", "act_reward": "twenty_off", "reason": "promo"})
    coupon_job = BulkJob.objects.get()
    bulk.bulk_job_run(coupon_job.pk)
    coupon_job.refresh_from_db()
    assert (coupon_job.done, coupon_job.skipped) == (4, 1)
    assert CustomerReward.objects.filter(reward=discount_rewards["twenty"], removed_at__isnull=True).count() == 5
    applied = AuditEntry.objects.filter(job_id=coupon_job.pk, action=AuditAction.REWARD_APPLY)
    assert applied.count() == 4 and {e.reason for e in applied} == {"promo"}

    run_form(
        client,
        {"scope": "all", "action": "attach_product", "act_product": "scale", "act_grant_free": "1", "reason": "deal"},
    )
    attach_job = BulkJob.objects.exclude(pk=coupon_job.pk).get()
    bulk.bulk_job_run(attach_job.pk)
    attach_job.refresh_from_db()
    assert (attach_job.done, attach_job.skipped) == (3, 2)
    assert (
        CustomerProduct.objects.filter(product=catalogue["scale"], status="active", customer__env="sandbox").count()
        == 5
    )
    page = page_of(client.get(f"/jobs/{attach_job.pk}/"))
    assert "Skipped 2 · already has the product" in text(element(page, "job-reasons"))
    assert "cus_0 Skipped already has the product" in text(element(page, "job-problems"))
    jobs = text(element(page_of(client.get("/jobs/")), "jobs"))  # the list names what each job gives
    assert f"#{attach_job.pk} Attach Product: {catalogue['scale'].name} (granted for free)" in jobs
    assert f"#{coupon_job.pk} Add Coupon: {discount_rewards['twenty'].name}" in jobs


def test_create_balance_grants_with_expiry_and_set_balance_reports_failures(client, ops, team, catalogue):
    client.force_login(ops)
    expires = (timezone.localtime() + timezone.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    run_form(
        client,
        {
            "scope": "all",
            "action": "create_balance",
            "act_feature": "seats",
            "act_amount": "3",
            "act_expires_at": expires,
            "reason": "trial",
        },
    )
    job = BulkJob.objects.get()
    bulk.bulk_job_run(job.pk)
    grants = Balance.objects.filter(feature=catalogue["seats"], customer_product__isnull=True)
    assert grants.count() == 5 and {g.remaining for g in grants} == {Decimal(3)}
    assert all(g.expires_at is not None for g in grants)

    # Set balance below zero: the free plan allows no overage, so the service refuses each one, saying why.
    run_form(
        client, {"scope": "all", "action": "set_balance", "act_feature": "messages", "act_amount": "-5", "reason": "x"}
    )
    failing = BulkJob.objects.exclude(pk=job.pk).get()
    bulk.bulk_job_run(failing.pk)
    failing.refresh_from_db()
    assert (failing.done, failing.failed) == (0, 5)
    reasons = text(element(page_of(client.get(f"/jobs/{failing.pk}/")), "job-reasons"))
    assert "Failed 5 · A negative balance is only possible where overage is allowed" in reasons


def test_a_job_skips_customers_deleted_since_and_other_environments_rows(client, ops, team):
    client.force_login(ops)
    ticked = [c.pk for c in team["sandbox"][:2]] + [team["live"].pk]
    run_form(
        client, {"ids": ticked, "action": "add_balance", "act_feature": "messages", "act_amount": "1", "reason": "x"}
    )
    job = BulkJob.objects.get()
    customer_delete(customer=team["sandbox"][1], actor=None)
    bulk.bulk_job_run(job.pk)
    job.refresh_from_db()
    assert (job.done, job.skipped) == (1, 2)
    items = dict(BulkJobItem.objects.filter(job=job).values_list("reason", "customer_ref"))
    assert items == {"": "cus_0", "deleted since": "cus_1", "other environment": ""}  # no live id on a sandbox page
    assert Balance.objects.filter(customer=team["live"], remaining=100).exists()


def test_cancelling_a_queued_job_stops_it_before_any_customer(client, ops, team):
    client.force_login(ops)
    run_form(
        client, {"scope": "all", "action": "add_balance", "act_feature": "messages", "act_amount": "1", "reason": "x"}
    )
    job = BulkJob.objects.get()
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 302
    bulk.bulk_job_run(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed) == ("cancelled", 0)
    stopped = text(element(page_of(client.get(f"/jobs/{job.pk}/")), "job-stopped"))
    assert stopped == f"Cancelled by {ops.username} after 0 of 5 customers; the other 5 were not changed."
    assert AuditEntry.objects.filter(action=AuditAction.BULK_JOB_CANCEL, target_id=str(job.pk)).count() == 1


def test_the_job_page_polls_while_running_and_a_job_stays_in_its_environment(client, ops, team):
    client.force_login(ops)
    run_form(
        client, {"scope": "all", "action": "add_balance", "act_feature": "messages", "act_amount": "1", "reason": "x"}
    )
    job = BulkJob.objects.get()
    fragment = client.get(f"/jobs/{job.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<section id="job-progress"') and 'hx-trigger="every 1s"' in fragment
    assert "0 %" in fragment and "Cancel job" not in fragment  # Cancel sits outside the region polled
    client.post("/env/", {"env": "live", "next": "/jobs/"})
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 404
    assert f"#{job.pk}" not in page_of(client.get("/jobs/"))


def test_support_and_viewer_see_jobs_but_no_controls(client, support, viewer, ops, team):
    client.force_login(ops)
    run_form(
        client, {"scope": "all", "action": "add_balance", "act_feature": "messages", "act_amount": "1", "reason": "x"}
    )
    job = BulkJob.objects.get()
    for person in (support, viewer):
        client.force_login(person)
        page = page_of(client.get(f"/jobs/{job.pk}/"))
        assert "Cancel job" not in page
        listing = page_of(client.get("/customers/"))
        assert 'name="ids"' not in listing and "Preview…" not in listing
        assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == "queued" and job.cancel_requested_at is None
    assert Customer.objects.count() == 6


def test_export_csv_of_the_ticked_rows_or_all_matching(client, ops, team):
    client.force_login(ops)
    ticked = [team["sandbox"][1].pk, team["sandbox"][3].pk, team["live"].pk]
    response = client.get("/bulk/", {"ids": ticked, "action": "export"})
    assert response.status_code == 302 and response.url.startswith("/exports/customers.csv?")
    body = b"".join(client.get(response.url).streaming_content).decode()
    assert [line.split(",")[0] for line in body.splitlines()[1:]] == ["cus_3", "cus_1"]  # never the live one
    response = client.get("/bulk/", {"scope": "all", "q": "cus_4", "action": "export"})
    body = b"".join(client.get(response.url).streaming_content).decode()
    assert [line.split(",")[0] for line in body.splitlines()[1:]] == ["cus_4"]


# --- Cancel, and the progress polled beside it ---------------------------------------------------------

GIFT = {"scope": "all", "action": "add_balance", "act_feature": "messages", "act_amount": "1", "reason": "x"}
HTMX = {"HX-Request": "true"}


def started_job(client, ops) -> BulkJob:
    client.force_login(ops)
    run_form(client, GIFT)
    job = BulkJob.objects.get()
    BulkJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())  # a worker took it
    return job


def test_cancel_lives_outside_the_region_the_page_replaces_every_second(client, ops, team):
    job = started_job(client, ops)

    page = page_of(client.get(f"/jobs/{job.pk}/"))
    fragment = client.get(f"/jobs/{job.pk}/", headers=HTMX).content.decode()

    assert "Cancel job" in text(element(page, "job-cancel"))
    assert "Cancel job" not in text(element(page, "job-progress")) and 'hx-trigger="every 1s"' in page
    assert "Cancel job" not in fragment and "job-cancel" not in fragment  # a poll never touches the button


def test_a_cancelled_running_job_says_cancelling_until_the_worker_confirms(client, ops, team):
    job = started_job(client, ops)

    response = client.post(f"/jobs/{job.pk}/cancel/")

    assert response.status_code == 302
    page = page_of(client.get(response.url))
    assert text(element(page, "job-status")) == "Cancelling…"
    assert "Cancelling…" in text(element(page, "job-cancelling")) and "Cancel job" not in page
    assert "stopping" not in page
    fragment = client.get(f"/jobs/{job.pk}/", headers=HTMX).content.decode()
    assert "Cancelling…" in fragment and 'hx-trigger="every 1s"' in fragment  # still polling for the end
    assert "Cancelling…" in text(element(page_of(client.get("/jobs/")), "jobs"))
    # The worker confirms: it stops before the next customer.
    BulkJob.objects.filter(pk=job.pk).update(status="cancelled", finished_at=timezone.now())
    fragment = client.get(f"/jobs/{job.pk}/", headers=HTMX).content.decode()
    assert "Cancelling…" not in fragment and 'hx-trigger="every 1s"' not in fragment
    assert f"Cancelled by {ops.username} after 0 of 5 customers" in fragment
    assert '<div id="job-cancel" hx-swap-oob="true"></div>' in fragment  # the notice beside it goes, once


def test_a_cancel_that_arrives_after_the_job_ended_says_it_had_already_finished_and_changes_nothing(client, ops, team):
    job = started_job(client, ops)
    page_with_cancel = page_of(client.get(f"/jobs/{job.pk}/"))
    assert "Cancel job" in page_with_cancel
    bulk.bulk_job_run(job.pk)  # the job ends before the click reaches the server
    entries = AuditEntry.objects.count()

    response = client.post(f"/jobs/{job.pk}/cancel/")

    page = page_of(client.get(response.url))
    assert f"Job {job.pk} had already finished (done) when the cancel arrived: nothing was changed." in page
    assert text(element(page, "job-status")) == "Done" and "done 5 · skipped 0 · failed 0" in page
    assert "stopping" not in page and "Cancelling" not in page and "Cancel job" not in page
    job.refresh_from_db()
    assert (job.status, job.cancel_requested_at, job.cancelled_by) == ("done", None, "")
    assert AuditEntry.objects.count() == entries


def test_a_cancel_that_the_last_customer_overtook_shows_the_job_done_not_stopping(client, ops, team, monkeypatch):
    monkeypatch.setattr(bulk_run, "CANCEL_CHECK_SECONDS", 3600)  # the worker does not look before its last customer
    job = started_job(client, ops)

    response = client.post(f"/jobs/{job.pk}/cancel/")  # asked while running …
    bulk.bulk_job_run(job.pk)  # … but the worker was already at its last customers and finished them

    page = page_of(client.get(response.url))
    job.refresh_from_db()
    assert job.status == "done" and job.done == 5
    assert text(element(page, "job-status")) == "Done"
    assert "stopping" not in page and "Cancelling" not in page and "Cancel job" not in page
    assert text(element(page, "job-stopped")) == (
        f"{ops.username} asked to cancel, but the job had reached its last customer: all 5 were processed."
    )


def test_the_bulk_page_asks_for_the_action_first_then_shows_only_its_fields(client, ops, team, discount_rewards):
    client.force_login(ops)
    picker = page_of(client.get("/bulk/", {"scope": "all"}))
    assert text(element(picker, "bulk-actions")).startswith("What should happen to these customers? Add to balance")
    assert 'id="b-feature"' not in picker and 'id="b-reward"' not in picker and 'name="reason"' not in picker

    coupon = page_of(client.get("/bulk/", {"scope": "all", "action": "add_coupon"}))
    assert 'id="b-reward"' in coupon and 'name="reason"' in coupon
    for other in ("b-feature", "b-amount", "b-interval", "b-expires", "b-product", "act_grant_free"):
        assert other not in coupon
    assert "20% off" in text(element(coupon, "b-reward"))
    # The way back to step 1 keeps the selection.
    assert element(coupon, "change-action").count("scope=all") == 1

    grant = page_of(client.get("/bulk/", {"scope": "all", "action": "create_balance"}))
    assert all(f'id="{i}"' in grant for i in ("b-feature", "b-amount", "b-interval", "b-expires"))
    assert 'id="b-reward"' not in grant and 'id="b-product"' not in grant


def test_the_preview_right_aligns_numbers_and_ends_in_one_primary_run_button(client, ops, team):
    client.force_login(ops)
    data = {"scope": "all", "action": "add_balance", "act_feature": "messages", "act_amount": "5", "reason": "x"}
    page = page_of(client.post("/bulk/", {**data, "preview": "1"}))
    sample = element(page, "preview-sample")
    assert sample.count('<td class="num">') == 2 * 5  # before and after of each of the five
    assert page.count("btn primary") == 1 and 'class="btn primary" type="submit" name="run"' in page
    assert text(element(page, "bulk-run")) == "Run on 5 customers"


def test_the_job_page_names_the_feature_and_shows_pace_and_the_skipped_linked_while_it_runs(client, ops, team):
    client.force_login(ops)
    run_form(client, {"scope": "all", "action": "add_balance", "act_feature": "api_calls", "act_amount": "5", **R})
    job = BulkJob.objects.get()
    bulk.bulk_job_run(job.pk, batch_size=2)  # cus_2, cus_3 and cus_4 have no API calls: skipped
    # As seen while it ran: 5 of 10 processed in 10 seconds.
    BulkJob.objects.filter(pk=job.pk).update(
        status="running", finished_at=None, started_at=timezone.now() - timezone.timedelta(seconds=10), total=10
    )

    fragment = client.get(f"/jobs/{job.pk}/", headers={"HX-Request": "true"}).content.decode()

    assert text(element(fragment, "job-pace")) == "0.5 customers a second · about 10 s left"
    problems = element(fragment, "job-problems")  # in the region that refreshes while the job runs
    assert '<a href="/customers/cus_2/">cus_2</a>' in problems and "feature not on their plan" in problems
    page = page_of(client.get(f"/jobs/{job.pk}/"))
    assert text(element(page, "job-what")) == "Add to balance: 5 API calls"  # names, not ids
