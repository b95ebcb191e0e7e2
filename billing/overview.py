"""What needs a look in an environment today, read for the dashboard's Overview page: customers in overage
(by feature), trials ending within a week, past-due plans, the largest usage this cycle, and the bulk jobs
running. Reads only; each is a small query on an index or a short list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, QuerySet
from django.utils import timezone

from billing.models import Balance, BulkJob, BulkJobStatus, CustomerProduct, CustomerProductStatus

LIST_SIZE = 10
TRIAL_WINDOW = timedelta(days=7)


@dataclass
class FeatureCount:
    feature_id: str
    name: str
    customers: int


@dataclass
class Overview:
    overage: list[FeatureCount]
    trials_ending: list[CustomerProduct]
    trials_ending_count: int
    past_due: list[CustomerProduct]
    past_due_count: int
    largest_usage: list[Balance]
    jobs_running: list[BulkJob]


def _alive(qs: QuerySet, env: str) -> QuerySet:
    return qs.filter(customer__env=env, customer__deleted_at__isnull=True)


def overage_by_feature(env: str) -> list[FeatureCount]:
    """How many customers are in overage of each feature, most first."""
    rows = (
        _alive(Balance.objects.filter(unlimited=False, remaining__lt=0), env)
        .values("feature__feature_id", "feature__name")
        .annotate(n=Count("customer", distinct=True))
        .order_by("-n", "feature__name")
    )
    return [FeatureCount(r["feature__feature_id"], r["feature__name"], r["n"]) for r in rows]


def trials_ending(env: str, now: datetime) -> QuerySet[CustomerProduct]:
    """Trials that end within a week from `now`, soonest first."""
    return (
        _alive(CustomerProduct.objects.filter(status=CustomerProductStatus.TRIALING), env)
        .filter(trial_ends_at__gte=now, trial_ends_at__lt=now + TRIAL_WINDOW)
        .select_related("customer", "product")
        .order_by("trial_ends_at", "id")
    )


def past_due(env: str) -> QuerySet[CustomerProduct]:
    return (
        _alive(CustomerProduct.objects.filter(status=CustomerProductStatus.PAST_DUE), env)
        .select_related("customer", "product")
        .order_by("-current_period_end", "-id")
    )


def largest_usage(env: str, limit: int = LIST_SIZE) -> list[Balance]:
    """The plans' balances used most in their current cycle (usage = granted − remaining), each with `cycle_usage`."""
    usage = ExpressionWrapper(F("allowance") + F("adjustment") - F("remaining"), output_field=DecimalField())
    rows = (
        _alive(Balance.objects.filter(unlimited=False, customer_product__isnull=False), env)
        .annotate(cycle_usage=usage)
        .filter(cycle_usage__gt=Decimal(0))
        .select_related("customer", "feature")
        .order_by("-cycle_usage", "id")
    )
    return list(rows[:limit])


def overview(env: str, now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    trials, due = trials_ending(env, now), past_due(env)
    return Overview(
        overage=overage_by_feature(env),
        trials_ending=list(trials[:LIST_SIZE]),
        trials_ending_count=trials.count(),
        past_due=list(due[:LIST_SIZE]),
        past_due_count=due.count(),
        largest_usage=largest_usage(env),
        jobs_running=list(
            BulkJob.objects.filter(env=env, status__in=[BulkJobStatus.QUEUED, BulkJobStatus.RUNNING]).order_by("-id")
        ),
    )
