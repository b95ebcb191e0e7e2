"""Bulk actions over a selection of customers: what they would change (the preview), starting one as a job,
cancelling it, and resuming the jobs a stopped worker left.

The actions themselves (their inputs, skip rules, preview line and apply) are objects registered in
`billing.services.bulk_actions`; the worker runs a job through `billing.services.bulk_run` (called by the task
in `billing.tasks`, which this module queues: bulk → tasks → bulk_run, no circle).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from billing.models import BulkJob, BulkJobItem, BulkJobItemStatus, BulkJobStatus
from billing.services.bulk_actions import (
    REGISTRY,
    SKIP_DELETED,
    SKIP_OTHER_ENV,
    AddBalance,
    AddCoupon,
    AttachProduct,
    BulkInput,
    CreateBalance,
    SetBalance,
    action_for,
    bulk_input,
    describe,
    labels,
)
from billing.services.bulk_run import bulk_job_run, skipped_reasons
from billing.tasks import run_bulk_job
from customers.audit import Actor, AuditAction, actor_label, audit_record
from customers.errors import Conflict
from customers.models import Customer
from customers.validation import require_reason

__all__ = [
    "ACTIONS",
    "REGISTRY",
    "BulkInput",
    "BulkPreview",
    "bulk_input",
    "bulk_job_cancel",
    "bulk_job_run",
    "bulk_job_start",
    "bulk_jobs_resume",
    "bulk_preview",
    "describe",
    "skipped_reasons",
]

log = logging.getLogger(__name__)

ADD_BALANCE, SET_BALANCE, CREATE_BALANCE = AddBalance.key, SetBalance.key, CreateBalance.key
ADD_COUPON, ATTACH_PRODUCT = AddCoupon.key, AttachProduct.key
ACTIONS = labels()  # {key: label}, for lists and the jobs' pages
SAMPLE_SIZE = 5
SKIPPED_SAMPLE_SIZE = 5  # the customers named under each skip reason


# --- the preview ----------------------------------------------------------------------------------------


@dataclass
class PreviewLine:
    """One customer of the preview: who, and the action's before → after for them."""

    customer_id: str
    name: str
    before: str = ""
    after: str = ""


@dataclass
class BulkPreview:
    total: int
    will_change: int
    skipped: dict[str, int] = field(default_factory=dict)
    sample: list[PreviewLine] = field(default_factory=list)
    # A few of the customers skipped for each reason, named (never another environment's).
    skipped_sample: dict[str, list[PreviewLine]] = field(default_factory=dict)

    @property
    def skipped_rows(self) -> list[tuple[str, int, list[PreviewLine]]]:
        """(reason, how many, a few of them) for each skip reason, most first."""
        rows = [(reason, n, self.skipped_sample.get(reason, [])) for reason, n in self.skipped.items()]
        return sorted(rows, key=lambda row: -row[1])

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def _skip_conditions(env: str, got: BulkInput) -> list[tuple[str, Q]]:
    """The skip reasons the database can count for a whole selection, each with its condition on a customer:
    every action's (other environment, deleted since), then the action's own."""
    return [
        (SKIP_OTHER_ENV, ~Q(env=env)),
        (SKIP_DELETED, Q(deleted_at__isnull=False)),
        *action_for(got.action).skip_conditions(got),
    ]


def bulk_preview(*, env: str, customers: QuerySet[Customer], got: BulkInput) -> BulkPreview:
    """How many of the selected customers the action would change, how many it would skip and why, and a
    sample of before → after. Counted by the database, so a preview of 100,000 customers takes moments."""
    customers = customers.order_by()
    total = customers.count()
    skipped: dict[str, int] = {}
    remaining = customers
    skipped_sample: dict[str, list[PreviewLine]] = {}
    for reason, condition in _skip_conditions(env, got):
        n = remaining.filter(condition).count()
        if n:
            skipped[reason] = n
            if reason != SKIP_OTHER_ENV:  # nothing of the other environment shows
                few = remaining.filter(condition).order_by("pk").values_list("customer_id", "name")
                skipped_sample[reason] = [PreviewLine(cid, name) for cid, name in few[:SKIPPED_SAMPLE_SIZE]]
        remaining = remaining.exclude(condition)
    will_change = total - sum(skipped.values())
    action = action_for(got.action)
    sample = []
    for customer in remaining.order_by("pk")[:SAMPLE_SIZE]:
        seen = action.assess(customer, got)
        if not seen.skip:
            sample.append(PreviewLine(customer.customer_id, customer.name, seen.before, seen.after))
    return BulkPreview(
        total=total, will_change=will_change, skipped=skipped, sample=sample, skipped_sample=skipped_sample
    )


# --- starting, cancelling -------------------------------------------------------------------------------


@transaction.atomic
def bulk_job_start(
    *,
    env: str,
    customers: QuerySet[Customer],
    got: BulkInput,
    actor: Actor,
    reason: str,
    filter_query: str = "",
    filter_text: str = "",
) -> BulkJob:
    """Record a job over `customers` (the selection as it is now: one pending item per customer) and queue
    it. Customers deleted or moved since are skipped when it runs, each saying why."""
    reason = require_reason(reason)
    now = timezone.now()
    job = BulkJob.objects.create(
        env=env,
        action=got.action,
        params=got.params,
        reason=reason,
        filter_query=filter_query[:2000],
        filter_text=filter_text[:2000],
        actor=actor,
        actor_label=actor_label(actor),
        created_at=now,
        heartbeat_at=now,
    )
    # One INSERT … SELECT: a job over a million customers is recorded without reading them into Python.
    selected = customers.order_by().annotate(sel_pk=F("pk"), sel_ref=F("customer_id")).values("sel_pk", "sel_ref")
    select_sql, select_params = selected.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {BulkJobItem._meta.db_table} (job_id, customer_id, customer_ref, status, reason) "
            f"SELECT %s, sel.sel_pk, sel.sel_ref, %s, '' FROM ({select_sql}) sel ORDER BY sel.sel_pk",
            (job.pk, BulkJobItemStatus.PENDING, *select_params),
        )
        job.total = cur.rowcount
    job.save(update_fields=["total"])
    audit_record(
        actor=actor,
        action=AuditAction.BULK_JOB_START,
        env=env,
        target_type="bulk_job",
        target_id=job.pk,
        after={"action": got.action, **got.params, "customers": job.total, "filter": filter_text},
        reason=reason,
    )
    transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int) -> None:
    run_bulk_job.enqueue(job_id)


@transaction.atomic
def bulk_job_cancel(*, job: BulkJob, actor: Actor) -> BulkJob:
    """Ask a job to stop: its worker stops before the next customer (within a second) and says how far it got.
    A job not yet started is cancelled at once."""
    locked = BulkJob.objects.select_for_update().get(pk=job.pk)
    if locked.is_finished:
        # The page that showed Cancel may be seconds old: the job ended meanwhile, and there is nothing to stop.
        raise Conflict(
            f"Job {locked.pk} had already finished ({locked.get_status_display().lower()}) when the cancel "
            "arrived: nothing was changed.",
            code="job_finished",
        )
    now = timezone.now()
    locked.cancel_requested_at = locked.cancel_requested_at or now
    locked.cancelled_by = actor_label(actor)
    fields = ["cancel_requested_at", "cancelled_by"]
    if locked.status == BulkJobStatus.QUEUED:
        locked.status, locked.finished_at = BulkJobStatus.CANCELLED, now
        fields += ["status", "finished_at"]
    locked.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=AuditAction.BULK_JOB_CANCEL,
        env=locked.env,
        target_type="bulk_job",
        target_id=locked.pk,
        after={"processed": locked.processed, "total": locked.total},
    )
    return locked


def bulk_jobs_resume(*, stale_after: float = 30.0, wait: bool = False) -> list[int]:
    """Queue again the jobs left unfinished by a worker that stopped (no sign of life for `stale_after`
    seconds): the worker command runs this at start. Resuming one that is in fact still running is safe.

    `wait`: a job whose last sign of life is more recent than that may belong to a worker that has just
    died (killed, then restarted at once) or to one still running; wait until `stale_after` has passed
    since it, then resume it only if it gave no sign of life meanwhile."""
    unfinished = BulkJob.objects.filter(status__in=[BulkJobStatus.QUEUED, BulkJobStatus.RUNNING])
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    if wait:
        recent = unfinished.filter(heartbeat_at__gt=cutoff).aggregate(newest=Max("heartbeat_at"))["newest"]
        if recent is not None:
            pause = (recent + timedelta(seconds=stale_after) - timezone.now()).total_seconds()
            log.info("Waiting %.1f s to see whether a recently active bulk job's worker is still alive", pause)
            time.sleep(max(0.0, min(pause, stale_after)) + 0.05)
            cutoff = timezone.now() - timedelta(seconds=stale_after)
    stale = list(
        unfinished.filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lte=cutoff)).values_list("pk", flat=True)
    )
    for pk in stale:
        log.info("Resuming bulk job %s", pk)
        enqueue(pk)
    return stale
