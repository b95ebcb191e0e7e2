"""Running a bulk job (the worker's side; `billing.tasks.run_bulk_job` calls `bulk_job_run`).

Each customer's change is its own transaction through the action's `apply` (the same service as the single
edit), audited with the job's id. The customer's job item leaves `pending` in that same transaction, so a run
interrupted anywhere (a crash, a killed worker) and started again applies each change exactly once: what
committed is done, what did not is still pending. Two runs of one job at once are safe too: an item is claimed
by a conditional UPDATE.
"""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from billing.models import BulkJob, BulkJobItem, BulkJobItemStatus, BulkJobStatus
from billing.services.bulk_actions import SKIP_DELETED, SKIP_OTHER_ENV, BulkInput, Skip, action_for, bulk_input
from customers.audit import audit_job
from customers.errors import ServiceError
from customers.models import Customer

log = logging.getLogger("billing.services.bulk")
CANCEL_CHECK_SECONDS = 0.2


def bulk_job_run(job_id: int, *, batch_size: int = 200) -> BulkJob:
    """Run a job's pending items in order until none is left or it is cancelled."""
    job = BulkJob.objects.get(pk=job_id)
    if job.is_finished:
        return job
    now = timezone.now()
    BulkJob.objects.filter(pk=job.pk, status=BulkJobStatus.QUEUED).update(status=BulkJobStatus.RUNNING, started_at=now)
    try:
        got = bulk_input(job.action, job.params)
    except ServiceError as e:  # the feature, coupon or product went away since: every customer fails, saying why
        got = None
        unusable = e.message
    checked = time.monotonic()
    while True:
        pending = list(
            BulkJobItem.objects.filter(job=job, status=BulkJobItemStatus.PENDING)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not pending:
            break
        for item_id in pending:
            if time.monotonic() - checked >= CANCEL_CHECK_SECONDS:
                checked = time.monotonic()
                if BulkJob.objects.filter(pk=job.pk, cancel_requested_at__isnull=False).exists():
                    return _finish(job, BulkJobStatus.CANCELLED)
            _run_item(job, item_id, got, unusable if got is None else "")
    return _finish(job, BulkJobStatus.DONE)


def _finish(job: BulkJob, status: str) -> BulkJob:
    BulkJob.objects.filter(pk=job.pk).exclude(status=BulkJobStatus.CANCELLED).update(
        status=status, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def _run_item(job: BulkJob, item_id: int, got: BulkInput | None, unusable: str) -> None:
    with transaction.atomic():
        # The claim: only one run moves an item from pending, and only if its change commits with it.
        if not BulkJobItem.objects.filter(pk=item_id, status=BulkJobItemStatus.PENDING).update(
            status=BulkJobItemStatus.DONE
        ):
            return
        item = BulkJobItem.objects.select_related("customer").get(pk=item_id)
        customer = item.customer
        status, why, before, after = BulkJobItemStatus.SKIPPED, "", None, None
        if customer is None or customer.deleted_at is not None:
            why = SKIP_DELETED
        elif customer.env != job.env:
            why, item.customer_ref = SKIP_OTHER_ENV, ""  # nothing of the other environment shows on the job
        elif got is None:
            status, why = BulkJobItemStatus.FAILED, unusable
        else:
            status, why, before, after = _change(customer, job, got)
        item.status, item.reason, item.before, item.after = status, why[:500], before, after
        item.finished_at = timezone.now()
        item.save(update_fields=["status", "reason", "before", "after", "finished_at", "customer_ref"])
        counter = {"done": "done", "skipped": "skipped", "failed": "failed"}[status]
        BulkJob.objects.filter(pk=job.pk).update(**{counter: F(counter) + 1}, heartbeat_at=item.finished_at)


def _change(customer: Customer, job: BulkJob, got: BulkInput) -> tuple[str, str, str | None, str | None]:
    try:
        with transaction.atomic(), audit_job(job.pk, job.reason):
            action = action_for(got.action)
            seen = action.assess(customer, got)
            if seen.skip:
                return BulkJobItemStatus.SKIPPED, seen.skip, None, None
            after = action.apply(customer, got, seen, actor=job.actor, reason=job.reason)
            return BulkJobItemStatus.DONE, "", seen.before, after
    except Skip as e:
        return BulkJobItemStatus.SKIPPED, str(e), None, None
    except ServiceError as e:
        return BulkJobItemStatus.FAILED, e.message, None, None
    except Exception as e:  # one customer's surprise must not stop the other 99,999
        log.exception("Bulk job %s failed on customer %s", job.pk, customer.pk)
        return BulkJobItemStatus.FAILED, f"Unexpected error: {type(e).__name__}", None, None


def skipped_reasons(job: BulkJob) -> list[tuple[str, str, int]]:
    """(status, reason, count) of a job's skipped and failed customers, most frequent first."""
    rows = (
        BulkJobItem.objects.filter(job=job, status__in=[BulkJobItemStatus.SKIPPED, BulkJobItemStatus.FAILED])
        .values("status", "reason")
        .annotate(n=Count("id"))
        .order_by("-n", "status", "reason")
    )
    return [(row["status"], row["reason"], row["n"]) for row in rows]
