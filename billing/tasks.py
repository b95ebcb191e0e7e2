"""Background tasks (Django's Tasks framework, through the django-tasks backport): the backend is the
`TASKS` setting, the database by default, run by `manage.py jobs_worker`.

This module imports only the runner (`billing.services.bulk_run`); `billing.services.bulk`, which starts jobs,
imports this one to queue them: one direction, no circle."""

from django_tasks import task

from billing.services.bulk_run import bulk_job_run


@task()
def run_bulk_job(job_id: int) -> int:
    """Run a bulk job's pending customers; returns how many it has processed in all."""
    return bulk_job_run(job_id).processed
