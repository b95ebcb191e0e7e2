"""Backfill invoices and subscriptions from Stripe for the customers linked to a Stripe customer."""

from django.core.management.base import BaseCommand, CommandError

from billing.stripe_inbound.backfill import backfill_customer, record_backfill, retry_failed_push
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
        pks = self._customer_pks(customer, self._connected(env))
        total, failed, done = len(pks), 0, 0
        self.stdout.write(f"Reading {total} customer{'s' if total != 1 else ''} from Stripe.")
        try:
            for done, pk in enumerate(pks, 1):
                if not self._backfill(Customer.objects.get(pk=pk), f"[{done}/{total}]"):
                    failed += 1
        except KeyboardInterrupt:
            raise CommandError(
                f"Interrupted at customer {done} of {total}. What was read is stored; "
                "run the command again to finish (nothing is duplicated)."
            )
        if failed:
            raise CommandError(f"{failed} of {total} customers could not be read from Stripe (see above).")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} customer{'s' if total != 1 else ''} read from Stripe."))

    def _connected(self, env: str | None) -> list[str]:
        """The environments to read (`env`, or every one) that are connected, saying which are skipped."""
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
        return connected

    def _customer_pks(self, customer_id: str | None, envs: list[str]) -> list[int]:
        """The linked customers of `envs` to read (only `customer_id`, if given), oldest first."""
        # Each customer is read with its own environment's key (the Stripe client is picked from the customer).
        customers = Customer.objects.alive().exclude(stripe_id="").filter(env__in=envs)
        if customer_id:
            customers = customers.filter(customer_id=customer_id)
            if not customers.exists():
                raise CommandError(f"No customer {customer_id!r} linked to a Stripe customer in {' or '.join(envs)}.")
        return list(customers.order_by("id").values_list("pk", flat=True))

    def _backfill(self, customer: Customer, position: str) -> bool:
        """Read one customer back from Stripe and say how it went; False when Stripe failed."""
        label = f"{position} {customer.customer_id} ({customer.env}, {customer.stripe_id})"
        try:
            result = backfill_customer(customer)
        except StripeError as exc:
            record_backfill(customer, exc)
            self.stderr.write(f"{label}: {exc.message}")
            return False
        record_backfill(customer, None)
        if customer.stripe_sync_error:
            retry_failed_push(customer)
        self.stdout.write(f"{label}: {result.summary()}")
        return True
