from django.core.management.base import BaseCommand, CommandError

from billing import partitions


class Command(BaseCommand):
    help = (
        "Drop the events of months older than the last --keep-months (this month counts as one): whole monthly "
        "partitions, instantly (PostgreSQL). --dry-run lists what would go and changes nothing. The daily usage "
        "rollup and balances are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keep-months", type=int, required=True, help="months kept, this one included")
        parser.add_argument("--dry-run", action="store_true", help="only list what would be dropped")

    def handle(self, *args, keep_months: int, dry_run: bool, **options):
        if keep_months < 1:
            raise CommandError("--keep-months must be at least 1 (the current month).")
        if not partitions.is_partitioned():
            self.stdout.write("The events table is not partitioned yet (run migrate): nothing to do.")
            return
        r = partitions.drop_months_before(keep_months=keep_months, dry_run=dry_run)
        verb = "Would drop" if dry_run else "Dropped"
        for p in r.dropped:
            self.stdout.write(f"{verb} {p.name} ({p.rows:,} events).")
        total = sum(p.rows for p in r.dropped) + r.default_rows
        self.stdout.write(
            f"{verb} {len(r.dropped)} month(s) before {r.cutoff:%Y-%m-%d} and {r.default_rows:,} older events "
            f"of the default partition: {total:,} events, {r.keys:,} idempotency keys."
            + (" Nothing was changed (--dry-run)." if dry_run else "")
        )
