"""Demo data that looks like a real SaaS: run it as often as you like, it creates nothing twice."""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing import rollup
from billing.management.demo.catalogue import CatalogueMixin
from billing.management.demo.customers import CustomersMixin
from billing.models import (
    Event,
    Invoice,
)
from customers.models import Customer

SANDBOX_CUSTOMERS = 200
LIVE_CUSTOMERS = 40


class Command(CatalogueMixin, CustomersMixin, BaseCommand):
    help = "Fill the database with realistic demo data and the demo logins (ops, support, viewer, admin)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")
        parser.add_argument("--sandbox", type=int, default=SANDBOX_CUSTOMERS, help="Sandbox customers.")
        parser.add_argument("--live", type=int, default=LIVE_CUSTOMERS, help="Live customers.")

    def handle(self, *args, force=False, sandbox=SANDBOX_CUSTOMERS, live=LIVE_CUSTOMERS, **options):
        if not settings.DEBUG and not force:
            raise CommandError("DEBUG is off: this looks like production. Pass --force to add demo data anyway.")
        password = os.environ.get("DEMO_PASSWORD", "demo")
        self.now = timezone.now().replace(microsecond=0)
        self.started = time.monotonic()
        self.verbosity = options.get("verbosity", 1)
        users = self.create_users(password)
        catalogue = self.create_catalogue()
        self.progress("Logins and catalogue ready.")
        created = 0
        for env, count in (("sandbox", sandbox), ("live", live)):
            step = max(1, count // 10)  # about ten lines per environment, the last one at the end
            for i in range(count):
                created += self.create_customer(env, i, catalogue, users)
                if (i + 1) % step == 0 or i + 1 == count:
                    self.progress(f"{env}: {i + 1} of {count} customers ({created} new so far)")
        if created:
            self.progress("Summing the events into the daily usage the graphs read...")
            rollup.rebuild()  # the events above were written in bulk, around the track path that keeps it
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {created} new customers "
                f"({Customer.objects.alive().filter(env='sandbox').count()} in sandbox, "
                f"{Customer.objects.alive().filter(env='live').count()} in live), "
                f"{Event.objects.count():,} events, {Invoice.objects.count()} invoices."
            )
        )
        self.stdout.write(
            "Demo logins (password: %s):" % ("$DEMO_PASSWORD" if "DEMO_PASSWORD" in os.environ else "demo")
        )
        for username, role in (
            ("ops", "Ops: everything"),
            ("support", "Support: balance edits"),
            ("viewer", "Viewer: read only"),
            ("admin", "superuser: /admin/ catalogue"),
        ):
            self.stdout.write(f"  {username:<8} {role}")

    def progress(self, message: str) -> None:
        """A line of progress with the seconds so far (the whole run takes about a minute), unless -v 0."""
        if self.verbosity > 0:
            self.stdout.write(f"[{time.monotonic() - self.started:5.1f} s] {message}")
            self.stdout.flush()

    # --- users and catalogue ----------------------------------------------------------------------

    def create_users(self, password: str) -> dict[str, User]:
        users = {}
        for username, group in (("ops", "Ops"), ("support", "Support"), ("viewer", "Viewer")):
            user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=group)])
            users[username] = user
        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        admin.is_superuser = admin.is_staff = True
        admin.set_password(password)
        admin.save()
        users["admin"] = admin
        return users
