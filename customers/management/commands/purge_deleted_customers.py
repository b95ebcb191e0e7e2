"""Remove for good the customers deleted longer ago than --older-than (for cron). Audit entries stay."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from customers.models import Customer
from customers.services.customers import customers_purge

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text or "")
    if not match:
        raise CommandError(f"--older-than takes a number and a unit (m, h, d or w), like 30d; not {text!r}.")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Purge soft-deleted customers (and their products, balances, events, invoices) for good."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="How long ago they were deleted, e.g. 30d, 12h, 2w.")
        parser.add_argument("--dry-run", action="store_true", help="Only say how many would be purged.")

    def handle(self, *args, older_than: str, dry_run: bool, **options):
        cutoff = timezone.now() - parse_age(older_than)
        if dry_run:
            count = Customer.objects.deleted_before(cutoff).count()
            self.stdout.write(
                f"Would purge {count} customer{'s' if count != 1 else ''} deleted before {cutoff:%Y-%m-%d %H:%M} UTC."
            )
            return
        count = customers_purge(older_than=cutoff, actor=None)
        self.stdout.write(
            f"Purged {count} customer{'s' if count != 1 else ''} deleted before {cutoff:%Y-%m-%d %H:%M} UTC."
        )
