"""Bulk actions on the customers list (Ops): the action's form, its preview, starting the job; and the Jobs
pages with their live progress and Cancel."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from autumn_admin.dashboard import customer_list as listing
from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.forms.bulk import EXPORT, BulkActionForm
from autumn_admin.dashboard.permissions import CANCEL_BULK_JOB, RUN_BULK_JOB, VIEW_BULK_JOB, require_perm
from billing.models import BulkJob, BulkJobItem, BulkJobItemStatus, Interval, Reward
from billing.services import bulk
from billing.services.bulk_actions import REGISTRY
from customers.errors import ServiceError


def _choices(action) -> dict:
    """The chosen action's choices only: an action's form shows (and reads) its own fields."""
    fields = action.fields if action else ()
    return {
        "actions": list(REGISTRY.values()),
        "feature_choices": listing.feature_choices() if "feature" in fields else [],
        "reward_choices": (
            list(Reward.objects.filter(active=True).order_by("name").values_list("reward_id", "name"))
            if "reward" in fields
            else []
        ),
        "product_choices": listing.product_choices() if "product" in fields else [],
        "interval_choices": Interval.choices,
    }


@require_http_methods(["GET", "POST"])
def bulk_action(request):
    """In steps. GET without an action: pick one. GET with one: that action's fields only. POST "preview": what it
    would change, naming customers. POST "run": the job."""
    require_perm(request, RUN_BULK_JOB)
    env = current_env(request)
    posted = request.method == "POST"
    form = BulkActionForm(request.POST if posted else request.GET)
    selection = form.selection
    if form.values["action"] == EXPORT and not form.nul_problem:
        return redirect(f"{_export_url()}?{urlencode(selection.hidden_fields(), doseq=True)}")
    values = form.values
    if not posted and not values["feature"]:
        values["feature"] = selection.filters.feature  # the feature the list was filtered by
    action = form.chosen_action
    context = {
        "selection": selection,
        "action": action,
        "values": values,
        "errors": {},
        "preview": None,
        "change_action_query": urlencode(selection.hidden_fields(), doseq=True),
        **_choices(action),
    }
    status = 200
    if posted and form.is_valid():
        got, reason = form.cleaned_data["got"], form.cleaned_data["reason"]
        customers = selection.customers(env)
        if "run" in request.POST:
            job = bulk.bulk_job_start(
                env=env,
                customers=customers,
                got=got,
                actor=request.user,
                reason=reason,
                filter_query=urlencode(selection.filters.query()),
                filter_text=selection.describe(),
            )
            messages.success(request, f"Job {job.pk} started: {bulk.describe(got)} for {job.total:,} customers.")
            return redirect("job", job.pk)
        context["preview"] = bulk.bulk_preview(env=env, customers=customers, got=got)
        context["described"] = bulk.describe(got)
    elif posted or form.nul_problem or form.selection_problem:
        context["errors"] = form.errors_by_input() if posted else {"all": form.nul_problem or form.selection_problem}
        status = 400 if (form.selection_problem and not form.nul_problem) else 422
    return render(request, "billing/bulk_action.html", context, status=status)


def _export_url() -> str:
    return reverse("customers:export")


def _job_for(request, pk: int) -> BulkJob:
    """A job of the dashboard's environment (another environment's is a 404)."""
    require_perm(request, VIEW_BULK_JOB)
    job = BulkJob.objects.filter(pk=pk, env=current_env(request)).first()
    if job is None:
        raise Http404(f"No job {pk} in this environment.")
    return job


@require_GET
def job_list(request):
    require_perm(request, VIEW_BULK_JOB)
    jobs = BulkJob.objects.filter(env=current_env(request)).order_by("-created_at", "-id")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    described: dict[str, str] = {}  # jobs repeat their inputs: each distinct one is looked up once
    for job in page.object_list:
        inputs = json.dumps([job.action, job.params], sort_keys=True, default=str)
        if inputs not in described:
            described[inputs] = _job_described(job)
        job.described = described[inputs]
    return render(request, "billing/jobs.html", {"page": page})


def _job_described(job: BulkJob) -> str:
    """The job's action and inputs in words, with names ("Add to balance: 1,000 API calls"); the stored inputs
    as they are when what they name has gone since."""
    try:
        return bulk.describe(bulk.bulk_input(job.action, job.params))
    except ServiceError:
        inputs = " · ".join(f"{k} {v}" for k, v in job.params.items() if v != "")
        return f"{bulk.ACTIONS.get(job.action, job.action)}: {inputs}"


def _pace(job: BulkJob) -> dict:
    """How fast a running job goes (customers a second) and about when it ends (seconds left), once it has
    processed some; {} before that and once it has finished."""
    if job.is_finished or not job.started_at or not job.processed:
        return {}
    elapsed = max((timezone.now() - job.started_at).total_seconds(), 0.001)
    rate = job.processed / elapsed
    return {"rate": rate, "eta_seconds": int(job.left / rate) if rate else None}


@require_GET
def job_detail(request, pk: int):
    job = _job_for(request, pk)
    problems = (
        BulkJobItem.objects.filter(job=job, status__in=[BulkJobItemStatus.FAILED, BulkJobItemStatus.SKIPPED])
        .select_related("customer")
        .order_by("-status", "id")
    )
    context = {
        "job": job,
        "described": _job_described(job),
        "pace": _pace(job),
        "action_label": bulk.ACTIONS.get(job.action, job.action),
        "reasons": bulk.skipped_reasons(job),
        "problems": problems[:200],
        "recent": BulkJobItem.objects.filter(job=job, status=BulkJobItemStatus.DONE)
        .select_related("customer")
        .order_by("-id")[:10],
    }
    template = "billing/job.html#job-progress" if request.htmx else "billing/job.html"
    return render(request, template, context)


@require_POST
def job_cancel(request, pk: int):
    job = _job_for(request, pk)
    require_perm(request, CANCEL_BULK_JOB)
    try:
        bulk.bulk_job_cancel(job=job, actor=request.user)
    except ServiceError as e:
        messages.error(request, e.message)
    # Asked: the job's page says "Cancelling…" until the worker confirms, and then how far it got. No message
    # here: the job may end before the page shows it, and the page tells its state as it is then.
    return redirect("job", job.pk)
