"""Backfill invoices and subscriptions from Stripe for the customers linked to a Stripe customer."""

from django.core.management.base import BaseCommand, CommandError

from billing.stripe_io.backfill import backfill_customer, record_backfill, retry_failed_push
from billing.stripe_io.client import StripeError
from billing.stripe_io.config import KEY_SETTING, is_configured
from customers.models import Customer, Env


class Command(BaseCommand):
    help = (
        "Read the invoices and subscriptions of every customer linked to Stripe (or of one) and store them, "
        "each environment's customers with its own Stripe key (sandbox: test mode, live: live mode). "
        "Safe to interrupt and run again: rows are matched by their Stripe id, never duplicated."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customer", metavar="ID", help="Only this customer (its id in this app).")
        parser.add_argument(
            "--env", choices=Env.values, help="Only customers of this environment (default: every connected one)."
        )

    def handle(self, *args, customer=None, env=None, **options):
        envs = [env] if env else list(Env.values)
        connected = [e for e in envs if is_configured(e)]
        if not connected:
            needed = " or ".join(KEY_SETTING[e] for e in envs)
            raise CommandError(f"Stripe is not connected{f' for {env}' if env else ''}: set {needed}.")
        for skipped in (e for e in envs if e not in connected):
            self.stdout.write(
                f"Skipping {skipped} customers: Stripe is not connected for {skipped} "
                f"({KEY_SETTING[skipped]} is not set)."
            )
        # Each customer is read with its own environment's key (the Stripe client is picked from the customer).
        customers = Customer.objects.alive().exclude(stripe_id="").filter(env__in=connected)
        if customer:
            customers = customers.filter(customer_id=customer)
            if not customers.exists():
                raise CommandError(f"No customer {customer!r} linked to a Stripe customer in {' or '.join(connected)}.")
        pks = list(customers.order_by("id").values_list("pk", flat=True))
        total, failed, done = len(pks), 0, 0
        self.stdout.write(f"Reading {total} customer{'s' if total != 1 else ''} from Stripe.")
        try:
            for done, pk in enumerate(pks, 1):
                c = Customer.objects.get(pk=pk)
                label = f"[{done}/{total}] {c.customer_id} ({c.env}, {c.stripe_id})"
                try:
                    result = backfill_customer(c)
                except StripeError as exc:
                    failed += 1
                    record_backfill(c, exc)
                    self.stderr.write(f"{label}: {exc.message}")
                    continue
                record_backfill(c, None)
                if c.stripe_sync_error:
                    retry_failed_push(c)
                self.stdout.write(f"{label}: {result.summary()}")
        except KeyboardInterrupt:
            raise CommandError(
                f"Interrupted at customer {done} of {total}. What was read is stored; "
                "run the command again to finish (nothing is duplicated)."
            )
        if failed:
            raise CommandError(f"{failed} of {total} customers could not be read from Stripe (see above).")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} customer{'s' if total != 1 else ''} read from Stripe."))
