from django.core.management.base import BaseCommand

from billing.services.balances import balances_reset_due
from billing.services.plans import plans_roll_due


class Command(BaseCommand):
    help = (
        "Apply every period end that has passed (cancellations expire, scheduled plans start, periods roll), then "
        "reset every balance whose reset time has passed (run from cron; reads and writes also do both lazily)."
    )

    def handle(self, *args, **options):
        plans = plans_roll_due()
        count = balances_reset_due()
        self.stdout.write(f"Moved {plans} product{'s' if plans != 1 else ''} on at their period end.")
        self.stdout.write(f"Reset {count} balance{'s' if count != 1 else ''}.")
