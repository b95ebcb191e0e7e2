"""Bulk actions over a selection of customers: what they would change (the preview), starting one as a job,
and running it.

Each customer's change is its own transaction through the same service as the single edit
(`balance_add`, `balance_set`, `balance_create`, `reward_apply`, `plan_attach`), audited with the job's id.
The customer's job item leaves `pending` in that same transaction, so a run interrupted anywhere (a crash,
a killed worker) and started again applies each change exactly once: what committed is done, what did not
is still pending. Two runs of one job at once are safe too: an item is claimed by a conditional UPDATE.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    BulkJob,
    BulkJobItem,
    BulkJobItemStatus,
    BulkJobStatus,
    CustomerProduct,
    CustomerReward,
    Feature,
    FeatureType,
    Interval,
    Product,
    Reward,
)
from billing.quantities import parse_quantity
from billing.services.balances import balance_add, balance_create, balance_set
from billing.services.plans import CHECKOUT, GRANT_FREE, NOW, UPDATE_SUBSCRIPTION, plan_attach, plan_preview
from billing.services.rewards import reward_apply
from customers.audit import Actor, AuditAction, actor_label, audit_job, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import Customer
from customers.validation import require_reason

log = logging.getLogger(__name__)

ADD_BALANCE, SET_BALANCE, CREATE_BALANCE, ADD_COUPON, ATTACH_PRODUCT = (
    "add_balance",
    "set_balance",
    "create_balance",
    "add_coupon",
    "attach_product",
)
ACTIONS = {
    ADD_BALANCE: "Add to balance",
    SET_BALANCE: "Set balance",
    CREATE_BALANCE: "Create Balance",
    ADD_COUPON: "Add Coupon",
    ATTACH_PRODUCT: "Attach Product",
}
SKIP_DELETED = "deleted since"
SKIP_OTHER_ENV = "other environment"
SKIP_NO_FEATURE = "feature not on their plan"
SKIP_UNLIMITED = "unlimited balance"
SKIP_HAS_COUPON = "already has the coupon"
SKIP_HAS_PRODUCT = "already has the product"
SKIP_NEEDS_PAYMENT = "needs a Stripe Checkout payment"
SAMPLE_SIZE = 5
CANCEL_CHECK_SECONDS = 0.2


@dataclass
class BulkInput:
    """A bulk action's validated inputs: the stored form (`params`, JSON) and the objects it names."""

    action: str
    params: dict
    feature: Feature | None = None
    amount: Decimal | None = None
    reward: Reward | None = None
    product: Product | None = None
    expires_at: datetime | None = None
    interval: str = Interval.LIFETIME
    grant_free: bool = False


def bulk_input(action: str, raw: dict) -> BulkInput:
    """Validate an action's inputs (from the form, or a job's stored params); ServiceError names the field."""
    if action not in ACTIONS:
        raise ServiceError("Choose an action.", code="invalid_input", field="action")
    got = BulkInput(action=action, params={})
    if action in (ADD_BALANCE, SET_BALANCE, CREATE_BALANCE):
        feature = Feature.objects.filter(feature_id=str(raw.get("feature") or "")).first()
        if feature is None or feature.type == FeatureType.BOOLEAN:
            raise ServiceError("Choose a metered feature.", code="invalid_input", field="feature")
        if feature.archived:
            raise ServiceError(f"{feature.name} is archived.", code="invalid_input", field="feature")
        got.feature = feature
        got.amount = parse_quantity(raw.get("amount"), field="amount", allow_negative=action != CREATE_BALANCE)
        got.params = {"feature": feature.feature_id, "amount": str(got.amount)}
    if action == CREATE_BALANCE:
        got.interval = str(raw.get("interval") or Interval.LIFETIME)
        if got.interval not in Interval.values:
            raise ServiceError("Choose how often it resets.", code="invalid_input", field="interval")
        expires = raw.get("expires_at") or ""
        if expires:
            try:
                got.expires_at = datetime.fromisoformat(str(expires))
            except ValueError:
                raise ServiceError("The expiry must be a date and time.", code="invalid_input", field="expires_at")
            if timezone.is_naive(got.expires_at):
                got.expires_at = timezone.make_aware(got.expires_at)
            if got.expires_at <= timezone.now():
                raise ServiceError("The expiry must be in the future.", code="invalid_input", field="expires_at")
        got.params |= {"interval": got.interval, "expires_at": got.expires_at.isoformat() if got.expires_at else ""}
    if action == ADD_COUPON:
        got.reward = Reward.objects.filter(reward_id=str(raw.get("reward") or ""), active=True).first()
        if got.reward is None:
            raise ServiceError("Choose an active coupon.", code="invalid_input", field="reward")
        got.params = {"reward": got.reward.reward_id}
    if action == ATTACH_PRODUCT:
        got.product = (
            Product.objects.filter(product_id=str(raw.get("product") or ""), custom_for__isnull=True, archived=False)
            .order_by("-version")
            .first()
        )
        if got.product is None:
            raise ServiceError("Choose a product.", code="invalid_input", field="product")
        got.grant_free = raw.get("grant_free") in (True, "1", "on", "true")
        got.params = {"product": got.product.product_id, "grant_free": got.grant_free}
    return got


def describe(got: BulkInput) -> str:
    """The action in words: "Add to balance: 1,000 API calls"."""
    name = ACTIONS[got.action]
    if got.feature is not None:
        text = f"{name}: {_fmt(got.amount)} {got.feature.name}"
        if got.action == CREATE_BALANCE and got.expires_at:
            text += f", until {got.expires_at:%d %b %Y}"
        return text
    if got.reward is not None:
        return f"{name}: {got.reward.name}"
    if got.product is not None:
        return f"{name}: {got.product.name}" + (" (granted for free)" if got.grant_free else "")
    return name


# --- one customer ---------------------------------------------------------------------------------------


def _editable_balance(customer: Customer, feature: Feature) -> Balance | None | str:
    """The balance an edit of `feature` changes: the plan's (the oldest), else a grant. A skip reason when
    the customer has none, or only unlimited ones."""
    balances = list(Balance.objects.filter(customer=customer, feature=feature).order_by("customer_product_id", "id"))
    if not balances:
        return SKIP_NO_FEATURE
    editable = [b for b in balances if not b.unlimited]
    if not editable:
        return SKIP_UNLIMITED
    planned = [b for b in editable if b.customer_product_id is not None]
    return (planned or editable)[0]


def _fmt(value: Decimal) -> str:
    text = f"{value:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class Assessment:
    skip: str = ""
    before: str = ""
    after: str = ""
    balance: Balance | None = None


def assess(customer: Customer, got: BulkInput) -> Assessment:
    """What the action would do to one customer: a skip reason, or its before → after in words."""
    if got.action in (ADD_BALANCE, SET_BALANCE):
        balance = _editable_balance(customer, got.feature)
        if isinstance(balance, str):
            return Assessment(skip=balance)
        new = balance.remaining + got.amount if got.action == ADD_BALANCE else got.amount
        return Assessment(before=_fmt(balance.remaining), after=_fmt(new), balance=balance)
    if got.action == CREATE_BALANCE:
        total = sum((b.remaining for b in Balance.objects.filter(customer=customer, feature=got.feature)), Decimal(0))
        return Assessment(before=_fmt(total), after=_fmt(total + got.amount))
    if got.action == ADD_COUPON:
        held = CustomerReward.objects.filter(customer=customer, reward=got.reward, removed_at__isnull=True).exists()
        if held:
            return Assessment(skip=SKIP_HAS_COUPON)
        count = CustomerReward.objects.filter(customer=customer, removed_at__isnull=True).count()
        return Assessment(before=f"{count} coupon{'s' if count != 1 else ''}", after=f"+ {got.reward.name}")
    live = list(
        CustomerProduct.objects.filter(customer=customer, status__in=LIVE_PRODUCT_STATUSES).select_related("product")
    )
    if any(cp.product.product_id == got.product.product_id for cp in live):
        return Assessment(skip=SKIP_HAS_PRODUCT)
    return Assessment(before=", ".join(cp.product.name for cp in live) or "no product", after=got.product.name)


def _apply(customer: Customer, got: BulkInput, seen: Assessment, *, actor: Actor, reason: str) -> str:
    """Make the change through the single edit's service; returns the customer's state after, in words."""
    if got.action == ADD_BALANCE:
        return _fmt(balance_add(balance=seen.balance, delta=got.amount, actor=actor, reason=reason).remaining)
    if got.action == SET_BALANCE:
        return _fmt(balance_set(balance=seen.balance, new_balance=got.amount, actor=actor, reason=reason).remaining)
    if got.action == CREATE_BALANCE:
        balance_create(
            customer=customer,
            feature=got.feature,
            actor=actor,
            reason=reason,
            granted=got.amount,
            interval=got.interval,
            expires_at=got.expires_at,
        )
        return seen.after
    if got.action == ADD_COUPON:
        reward_apply(customer=customer, reward=got.reward, actor=actor)
        return seen.after
    preview = plan_preview(customer=customer, product=got.product, when=NOW)
    if not preview.needs_payment:
        method = preview.default_method
    elif got.grant_free:
        method = GRANT_FREE
    elif UPDATE_SUBSCRIPTION in preview.methods:
        method = UPDATE_SUBSCRIPTION
    else:
        raise _Skip(SKIP_NEEDS_PAYMENT if CHECKOUT in preview.methods else "needs payment: Stripe not connected")
    plan_attach(customer=customer, product=got.product, actor=actor, reason=reason, when=NOW, method=method)
    return seen.after


class _Skip(Exception):
    """Raised inside a customer's change when it turns out not to apply to them."""


# --- the preview ----------------------------------------------------------------------------------------


@dataclass
class BulkPreview:
    total: int
    will_change: int
    skipped: dict[str, int] = field(default_factory=dict)
    sample: list[tuple[str, str, str]] = field(default_factory=list)  # (customer id, before, after)


def _skip_conditions(env: str, got: BulkInput) -> list[tuple[str, Q]]:
    """The skip reasons the database can count for a whole selection, each with its condition on a customer."""
    conditions = [
        (SKIP_OTHER_ENV, ~Q(env=env)),
        (SKIP_DELETED, Q(deleted_at__isnull=False)),
    ]
    if got.action in (ADD_BALANCE, SET_BALANCE):
        balances = Balance.objects.filter(customer=OuterRef("pk"), feature=got.feature)
        conditions += [
            (SKIP_NO_FEATURE, ~Exists(balances)),
            (SKIP_UNLIMITED, ~Exists(balances.filter(unlimited=False))),
        ]
    elif got.action == ADD_COUPON:
        held = CustomerReward.objects.filter(customer=OuterRef("pk"), reward=got.reward, removed_at__isnull=True)
        conditions.append((SKIP_HAS_COUPON, Exists(held)))
    elif got.action == ATTACH_PRODUCT:
        held = CustomerProduct.objects.filter(
            customer=OuterRef("pk"), product__product_id=got.product.product_id, status__in=LIVE_PRODUCT_STATUSES
        )
        conditions.append((SKIP_HAS_PRODUCT, Exists(held)))
    return conditions


def bulk_preview(*, env: str, customers: QuerySet[Customer], got: BulkInput) -> BulkPreview:
    """How many of the selected customers the action would change, how many it would skip and why, and a
    sample of before → after. Counted by the database, so a preview of 100,000 customers takes moments."""
    customers = customers.order_by()
    total = customers.count()
    skipped: dict[str, int] = {}
    remaining = customers
    for reason, condition in _skip_conditions(env, got):
        n = remaining.filter(condition).count()
        if n:
            skipped[reason] = n
        remaining = remaining.exclude(condition)
    will_change = total - sum(skipped.values())
    sample = []
    for customer in remaining.order_by("pk")[:SAMPLE_SIZE]:
        seen = assess(customer, got)
        if not seen.skip:
            sample.append((customer.customer_id, seen.before, seen.after))
    return BulkPreview(total=total, will_change=will_change, skipped=skipped, sample=sample)


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
    from billing.tasks import run_bulk_job  # the task module imports this one

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


# --- running --------------------------------------------------------------------------------------------


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
            seen = assess(customer, got)
            if seen.skip:
                return BulkJobItemStatus.SKIPPED, seen.skip, None, None
            after = _apply(customer, got, seen, actor=job.actor, reason=job.reason)
            return BulkJobItemStatus.DONE, "", seen.before, after
    except _Skip as e:
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
