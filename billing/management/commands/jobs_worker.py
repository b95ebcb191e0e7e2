"""The background worker: takes over the bulk jobs an earlier worker left unfinished, then runs queued tasks.

python manage.py jobs_worker            # as long as it runs; Ctrl-C stops after the current customer
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from billing.services.bulk import bulk_jobs_resume


class Command(BaseCommand):
    help = "Run background jobs (bulk actions), resuming any that a stopped worker left unfinished."

    def add_arguments(self, parser):
        parser.add_argument(
            "--resume-after",
            type=float,
            default=None,
            help="seconds without a sign of life before an unfinished job is taken over (BULK_JOB_RESUME_AFTER)",
        )
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between looks for a new task")
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")

    def handle(self, *args, resume_after=None, interval=0.5, batch=False, **options):
        stale = settings.BULK_JOB_RESUME_AFTER if resume_after is None else resume_after
        resumed = bulk_jobs_resume(stale_after=stale, wait=True)
        if resumed:
            self.stdout.write(f"Resumed job(s) {', '.join(map(str, resumed))}.")
        worker_options = {
            "interval": interval,
            "verbosity": options["verbosity"],
            "reload": False,
            "startup_delay": False,
        }
        if batch:
            worker_options["batch"] = True
        backend = settings.TASKS["default"]["BACKEND"]
        if backend == "django_tasks_db.DatabaseBackend":
            call_command("db_worker", **worker_options)
        else:
            self.stdout.write(f"Jobs are queued to {backend}: run that backend's own worker.")
