from django.core.management.base import BaseCommand

from billing.services.current import everyone_bring_current


class Command(BaseCommand):
    help = (
        "Apply every period end that has passed (cancellations expire, scheduled plans start, periods roll), then "
        "reset every balance whose reset time has passed (run from cron; reads and writes also do both lazily)."
    )

    def handle(self, *args, **options):
        plans, count = everyone_bring_current()
        self.stdout.write(f"Moved {plans} product{'s' if plans != 1 else ''} on at their period end.")
        self.stdout.write(f"Reset {count} balance{'s' if count != 1 else ''}.")
