"""`python manage.py purge_idempotency_records` (for cron): forget Idempotency-Keys older than 24 hours."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from customers.idempotency import KEEP_FOR, idempotency_records_purge


class Command(BaseCommand):
    help = "Delete stored API answers for Idempotency-Keys older than --older-than hours (at least 24)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, default=KEEP_FOR.total_seconds() / 3600, metavar="HOURS")

    def handle(self, *args, older_than: float, **options):
        try:
            purged = idempotency_records_purge(older_than=timedelta(hours=older_than))
        except ValueError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"Forgot {purged} idempotency key{'s' if purged != 1 else ''}.")
