from django.core.management.base import BaseCommand

from billing import partitions


class Command(BaseCommand):
    help = (
        "Create the monthly partitions of the events for this month and the next --ahead months (PostgreSQL; "
        "idempotent, run from cron daily). Events the default partition holds for a created month move into it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=3, help="months after this one to create (default 3)")

    def handle(self, *args, ahead: int, **options):
        if not partitions.is_partitioned():
            self.stdout.write("The events table is not partitioned yet (run migrate): nothing to do.")
            return
        created = partitions.ensure_partitions(ahead=max(ahead, 0))
        for name in created:
            self.stdout.write(f"Created {name}.")
        months = [p for p in partitions.partitions() if p.month is not None]
        first, last = months[0].month, months[-1].month
        self.stdout.write(f"{len(created)} created; {len(months)} monthly partitions, {first:%Y-%m} to {last:%Y-%m}.")
