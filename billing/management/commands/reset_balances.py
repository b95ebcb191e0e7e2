from django.core.management.base import BaseCommand

from billing.services.balances import balances_reset_due


class Command(BaseCommand):
    help = "Reset every balance whose reset time has passed (run from cron; reads also reset lazily)."

    def handle(self, *args, **options):
        count = balances_reset_due()
        self.stdout.write(f"Reset {count} balance{'s' if count != 1 else ''}.")
