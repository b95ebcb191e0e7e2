"""A bulk job run by the real worker process (`manage.py jobs_worker`, the database backend): killed with
SIGKILL halfway and started again, it applies each change exactly once; cancelled, it stops within a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone

from billing.models import Balance, BulkJob, BulkJobItem
from customers.audit import AuditAction
from customers.models import AuditEntry, Customer
from tests.conftest import database_url
from tests.helpers import DashboardClient as Client

pytestmark = [
    pytest.mark.django_db(transaction=True),
]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def start_worker():
    """Start `manage.py jobs_worker` against the test database; every one started is stopped at the end."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = {**os.environ, "DATABASE_URL": database_url(), "BULK_JOB_RESUME_AFTER": "1", "DB_POOL": "0"}
        env.pop("TASKS_BACKEND", None)
        process = subprocess.Popen(
            [sys.executable, "manage.py", "jobs_worker", "--interval", "0.1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"Timed out waiting for {what}")


@pytest.fixture
def thousand(catalogue):
    now = timezone.now()
    Customer.objects.bulk_create(
        Customer(env="sandbox", customer_id=f"cus_{i:04d}", name=f"Customer {i}", created_at=now) for i in range(1000)
    )
    Customer.objects.create(env="live", customer_id="cus_live", created_at=now)  # never in a sandbox job
    return Customer.objects.filter(env="sandbox")


def start_grant_job(ops) -> BulkJob:
    client = Client()
    client.force_login(ops)
    response = client.post(
        "/bulk/",
        {
            "scope": "all",
            "q": "cus_",
            "action": "create_balance",
            "act_feature": "api_calls",
            "act_amount": "1000",
            "reason": "Launch credit",
            "run": "1",
        },
    )
    assert response.status_code == 302, response.content[:500]
    return BulkJob.objects.get()


def test_a_bulk_grant_applies_exactly_once_per_customer_though_the_worker_is_killed_and_restarted(
    ops, thousand, catalogue, start_worker
):
    job = start_grant_job(ops)
    assert job.total == 1000
    # Deleted after the job was started: skipped, saying why.
    gone = list(thousand.order_by("-customer_id").values_list("pk", flat=True)[:10])
    Customer.objects.filter(pk__in=gone).update(deleted_at=timezone.now())

    first = start_worker()
    wait_for(lambda: BulkJob.objects.get(pk=job.pk).processed >= 300, timeout=90, what="the first 300 customers")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    job.refresh_from_db()
    assert job.status == "running" and 300 <= job.processed < 1000, job.processed  # killed halfway

    start_worker()
    wait_for(lambda: BulkJob.objects.get(pk=job.pk).status == "done", timeout=120, what="the restarted job")

    job.refresh_from_db()
    assert (job.done, job.skipped, job.failed) == (990, 10, 0)
    grants = Balance.objects.filter(feature=catalogue["api_calls"], customer_product__isnull=True)
    per_customer = dict(grants.values_list("customer").annotate(n=Count("id")))
    assert len(per_customer) == 990 and set(per_customer.values()) == {1}  # each exactly once
    assert not set(per_customer) & set(gone)
    audited = AuditEntry.objects.filter(job_id=job.pk, action=AuditAction.BALANCE_CREATE)
    assert audited.count() == 990 and audited.values("customer").distinct().count() == 990
    assert set(audited.values_list("reason", flat=True)) == {"Launch credit"}
    skipped = BulkJobItem.objects.filter(job=job, status="skipped")
    assert set(skipped.values_list("reason", flat=True)) == {"deleted since"}
    assert set(skipped.values_list("customer_id", flat=True)) == set(gone)
    page = Client()
    page.force_login(ops)
    body = page.get(f"/jobs/{job.pk}/").content.decode()
    assert "done 990 · skipped 10 · failed 0" in body and "Skipped</span> 10 · deleted since" in body


def test_a_cancelled_job_stops_within_a_second_and_says_how_far_it_got(ops, thousand, start_worker):
    job = start_grant_job(ops)
    start_worker()
    wait_for(lambda: BulkJob.objects.get(pk=job.pk).processed >= 100, timeout=90, what="the job to start")

    client = Client()
    client.force_login(ops)
    asked = time.monotonic()
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 302
    wait_for(lambda: BulkJob.objects.get(pk=job.pk).status == "cancelled", timeout=5, what="the job to stop")
    assert time.monotonic() - asked < 1.0

    job.refresh_from_db()
    stopped_at = job.processed
    assert 100 <= stopped_at < 1000
    time.sleep(0.5)
    job.refresh_from_db()
    assert job.processed == stopped_at  # nothing more after stopping
    assert Balance.objects.filter(customer_product__isnull=True).count() == job.done
    body = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f"after {stopped_at:,} of 1,000 customers; the other {1000 - stopped_at:,} were not changed." in body
