"""Demo data that looks like a real SaaS: run it as often as you like, it creates nothing twice."""

from __future__ import annotations

import os
import random
import time
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import rollup
from billing.intervals import add_intervals
from billing.models import (
    Balance,
    CreditCost,
    CustomerProduct,
    Event,
    Feature,
    Invoice,
    Price,
    Product,
    ProductItem,
    Reward,
)
from billing.services.balances import balance_add, balance_set
from billing.services.products import product_attach
from billing.services.rewards import reward_apply
from customers.models import Customer
from customers.services.customers import customer_create

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Joan",
    "Niklaus",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "Knuth",
    "Wilson",
    "van Rossum",
]
PREFIX = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Pied Piper",
    "Aperture",
    "Black Mesa",
    "Tyrell",
    "Massive Dynamic",
    "Oscorp",
    "Gringotts",
    "Monarch",
    "Dunder",
    "Prestige",
    "Bluth",
    "Sterling",
    "Nakatomi",
    "Virtucon",
    "Wernham",
    "Krusty",
]
SUFFIX = [
    "Corp",
    "Labs",
    "Inc",
    "Analytics",
    "Studio",
    "Systems",
    "AI",
    "Cloud",
    "Health",
    "Logistics",
    "Robotics",
    "Media",
    "Partners",
    "Software",
    "Foods",
    "Energy",
    "Bank",
    "Games",
]
MODELS = ["fast", "smart", "vision", "embed"]

SANDBOX_CUSTOMERS = 200
LIVE_CUSTOMERS = 40
DAYS = 90


class Command(BaseCommand):
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

    def create_catalogue(self) -> dict:
        features = self.create_features()
        return {"features": features, "products": self.create_products(features), "rewards": self.create_rewards()}

    def create_features(self) -> dict:
        def feature(fid, name, ftype, usage_type="", events=(), unit=""):
            obj, _ = Feature.objects.update_or_create(
                feature_id=fid,
                defaults={
                    "name": name,
                    "type": ftype,
                    "usage_type": usage_type,
                    "event_names": list(events),
                    "unit_label": unit,
                },
            )
            return obj

        f = {
            "messages": feature("messages", "Messages", "metered", "single_use", ["message_sent"], "messages"),
            "api_calls": feature("api_calls", "API calls", "metered", "single_use", ["api_request"], "calls"),
            "ai_credits": feature(
                "ai_credits", "AI credits", "credit_system", "single_use", ["ai_generation"], "credits"
            ),
            # Drawn from the AI credits pool (they have no balance of their own): a reply costs 0.2 credits,
            # an image 0.6.
            "ai_chat": feature("ai_chat", "AI chat replies", "metered", "single_use", ["ai_chat"], "replies"),
            "image_generation": feature(
                "image_generation", "Image generations", "metered", "single_use", ["image_generated"], "images"
            ),
            "seats": feature("seats", "Seats", "metered", "continuous_use", [], "seats"),
            "sso": feature("sso", "SSO", "boolean"),
            "priority_support": feature("priority_support", "Priority support", "boolean"),
        }
        for metered, cost in (("ai_chat", "0.2"), ("image_generation", "0.6")):
            CreditCost.objects.update_or_create(
                credit_system=f["ai_credits"], metered_feature=f[metered], defaults={"credit_cost": Decimal(cost)}
            )
        return f

    def create_products(self, f: dict) -> dict:
        def product(pid, name, *, default=False, add_on=False, prices=(), items=(), trial=None):
            trial_fields = (
                {"trial_length": trial[0], "trial_unit": trial[1], "trial_card_required": True} if trial else {}
            )
            obj, created = Product.objects.get_or_create(
                product_id=pid,
                version=1,
                custom_for=None,
                defaults={"name": name, "is_default": default, "is_add_on": add_on, **trial_fields},
            )
            if created:
                for price in prices:
                    Price.objects.create(product=obj, **price)
                for item in items:
                    ProductItem.objects.create(product=obj, **item)
            return obj

        month = {"interval": "month"}
        p = {
            "free": product(
                "free",
                "Free",
                default=True,
                items=[
                    {"feature": f["messages"], "included": 100, **month},
                    {"feature": f["api_calls"], "included": 1000, **month},
                    {"feature": f["seats"], "included": 1, "interval": "lifetime"},
                ],
            ),
            "pro": product(
                "pro",
                "Pro",
                trial=(14, "day"),  # 14 days with a card, taken by Stripe Checkout
                prices=[{"type": "fixed", "amount": 9900, "currency": "usd", **month}],
                items=[
                    {"feature": f["messages"], "included": 5000, **month},
                    {"feature": f["api_calls"], "included": 50000, **month},
                    {"feature": f["seats"], "included": 10, "interval": "lifetime"},
                    {"feature": f["sso"], "interval": "lifetime"},
                ],
            ),
            "scale": product(
                "scale",
                "Scale",
                prices=[
                    {"type": "fixed", "amount": 25000, "currency": "usd", **month},
                    {
                        "type": "usage",
                        "feature": f["api_calls"],
                        "amount": 100,
                        "billing_units": 1000,
                        "currency": "usd",
                        **month,
                    },
                    {
                        "type": "usage",
                        "feature": f["messages"],
                        "amount": 1,
                        "billing_units": 1,
                        "currency": "usd",
                        **month,
                    },
                ],
                items=[
                    {"feature": f["messages"], "included": 20000, "overage_allowed": True, **month},
                    {
                        "feature": f["api_calls"],
                        "included": 250000,
                        "overage_allowed": True,
                        "usage_limit": 2000000,
                        **month,
                    },
                    {"feature": f["ai_credits"], "included": 1000, **month},
                    {"feature": f["seats"], "included": 50, "interval": "lifetime"},
                    {"feature": f["sso"], "interval": "lifetime"},
                    {"feature": f["priority_support"], "interval": "lifetime"},
                ],
            ),
            "seats_addon": product(
                "seats_addon",
                "Extra seats",
                add_on=True,
                prices=[{"type": "fixed", "amount": 2000, "currency": "usd", **month}],
                items=[{"feature": f["seats"], "included": 10, "interval": "lifetime"}],
            ),
        }
        return p

    def create_rewards(self) -> dict:
        def reward(rid, name, rtype, value, duration, months=None, active=True, codes=()):
            obj, _ = Reward.objects.update_or_create(
                reward_id=rid,
                defaults={
                    "name": name,
                    "type": rtype,
                    "value": Decimal(value),
                    "duration": duration,
                    "duration_months": months,
                    "active": active,
                    "promo_codes": list(codes),
                },
            )
            return obj

        r = {
            "20_off_3m": reward(
                "20_off_3m", "20% off for 3 months", "percentage_discount", 20, "months", 3, codes=["SPRING20"]
            ),
            "50_off_once": reward(
                "50_off_once", "$50 off once", "fixed_discount", 5000, "one_off", codes=["WELCOME50"]
            ),
            "10_off_forever": reward(
                "10_off_forever", "10% off forever (partner)", "percentage_discount", 10, "forever"
            ),
            "launch_week": reward(
                "launch_week", "Launch week 30% (ended)", "percentage_discount", 30, "months", 1, active=False
            ),
            "free_month_pro": reward("free_month_pro", "A month of Pro", "free_product", 0, "months", 1),
        }
        return r

    # --- customers --------------------------------------------------------------------------------

    def create_customer(self, env: str, i: int, cat: dict, users: dict) -> int:
        rng = random.Random(f"{env}-{i}")  # per customer, so reruns and partial runs agree
        if env == "sandbox" and i == 0:
            cid, name, email = "acme_corp", "Acme Corp", "ada@acme.test"
        else:
            company = f"{rng.choice(PREFIX)} {rng.choice(SUFFIX)}"
            slug = company.lower().replace(" ", "_").replace("-", "_")
            cid = f"{slug}_{i:03d}" if rng.random() < 0.6 else f"user_{rng.getrandbits(40):010x}"
            person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            name = company if rng.random() < 0.7 else person
            email = f"{person.split()[0].lower()}@{slug.replace('_', '')}.test"
        if Customer.objects.filter(env=env, customer_id=cid).exists():
            return 0
        created_at = self.now - timedelta(days=rng.randint(DAYS, 400), hours=rng.randint(0, 23))
        plan = (
            "acme" if cid == "acme_corp" else rng.choices(["free", "pro", "scale", "none"], weights=[45, 32, 15, 8])[0]
        )
        with transaction.atomic():
            customer = customer_create(
                env=env,
                customer_id=cid,
                actor=None,
                attach_defaults=False,
                name=name,
                email=email,
                fingerprint=f"fp_{rng.getrandbits(32):08x}" if rng.random() < 0.4 else "",
                metadata={
                    "plan_tier": rng.choice(["startup", "growth", "enterprise"]),
                    "region": rng.choice(["eu", "us", "apac"]),
                }
                if rng.random() < 0.6
                else {},
            )
            Customer.objects.filter(pk=customer.pk).update(created_at=created_at)
            customer.refresh_from_db()
            if plan == "none":
                return 1
            product = cat["products"]["pro" if plan == "acme" else plan]
            if plan in ("pro", "scale", "acme"):
                Customer.objects.filter(pk=customer.pk).update(stripe_id=f"cus_{rng.getrandbits(56):014x}"[:18])
                customer.refresh_from_db()
            # Start the subscription at the last monthly anniversary of its creation, so periods line up.
            start = created_at
            while add_intervals(start, "month") <= self.now:
                start = add_intervals(start, "month")
            status = "active"
            roll = rng.random()
            if plan in ("pro", "scale") and roll < 0.08:
                status = "past_due"
            elif plan in ("pro", "scale") and roll < 0.16 and start + timedelta(days=14) > self.now:
                status = "trialing"  # a trial that has ended has become the paid plan
            cp = product_attach(
                customer=customer,
                product=product,
                actor=None,
                status=status,
                now=start,
                trial_ends_at=start + timedelta(days=14) if status == "trialing" else None,
            )
            CustomerProduct.objects.filter(pk=cp.pk).update(started_at=created_at)
            if plan == "acme" or (plan in ("pro", "scale") and rng.random() < 0.25):
                addon = product_attach(customer=customer, product=cat["products"]["seats_addon"], actor=None, now=start)
                CustomerProduct.objects.filter(pk=addon.pk).update(started_at=created_at + timedelta(days=20))
            if rng.random() < 0.04:
                CustomerProduct.objects.filter(pk=cp.pk).update(canceled_at=self.now - timedelta(days=2))
            self.create_events(customer, plan, rng, cat)
            self.create_invoices(customer, product, rng, created_at)
            if plan == "acme":
                self.acme_extras(customer, cat, users)
            elif plan in ("pro", "scale") and rng.random() < 0.12:
                reward = cat["rewards"][rng.choice(["20_off_3m", "10_off_forever", "50_off_once"])]
                reward_apply(customer=customer, reward=reward, actor=users["ops"])
            elif plan != "none" and rng.random() < 0.05:
                balance = Balance.objects.filter(customer=customer, feature__feature_id="messages").first()
                if balance:
                    balance_add(
                        balance=balance,
                        delta=rng.choice([100, 250, 500]),
                        actor=users["support"],
                        reason=rng.choice(
                            ["Goodwill after support ticket", "Service outage credit", "Trial extension"]
                        ),
                    )
        return 1

    def create_events(self, customer: Customer, plan: str, rng: random.Random, cat: dict) -> None:
        """90 days of usage with a weekly rhythm and growth, then balances that agree with it."""
        scale = {"free": 0.3, "pro": 1.0, "scale": rng.choice([4.0, 4.0, 14.0]), "acme": 1.4}[plan]
        features = cat["features"]
        daily = {
            "messages": (120 if plan != "free" else 3) * scale,
            "api_calls": (1300 if plan != "free" else 25) * scale,
            # Scale's AI credits: about 25 credits a day of replies and images, growing towards the pool's
            # 1,000 a month, and a few credits tracked on the pool itself.
            "ai_chat": 80 if plan == "scale" else 0,
            "image_generation": 15 if plan == "scale" else 0,
            "ai_credits": 2 if plan == "scale" else 0,
        }
        names = {
            "messages": "message_sent",
            "api_calls": "api_request",
            "ai_chat": "ai_chat",
            "image_generation": "image_generated",
            "ai_credits": "ai_generation",
        }
        start = max(customer.created_at, self.now - timedelta(days=DAYS))
        growth = rng.uniform(0.8, 1.6)
        rows = []
        day = start
        while day < self.now:
            age = (day - start).days / DAYS
            weekday = 0.45 if day.weekday() >= 5 else 1.0
            for fid, base in daily.items():
                if base <= 0:
                    continue
                expected = base * weekday * (0.7 + 0.6 * age * growth) * rng.uniform(0.6, 1.4)
                batches = max(1, min(6, int(expected // 40) + 1)) if expected >= 1 else int(rng.random() < expected)
                for _ in range(batches):
                    value = max(1, round(expected / batches * rng.uniform(0.4, 1.6)))
                    ts = day + timedelta(seconds=rng.randint(0, 86399))
                    if ts >= self.now:
                        continue
                    props = (
                        {"model": rng.choice(MODELS)}
                        if fid != "api_calls"
                        else {"endpoint": rng.choice(["/search", "/embed", "/chat", "/upload"])}
                    )
                    rows.append(
                        Event(
                            customer=customer,
                            feature=features[fid],
                            event_name=names[fid],
                            value=Decimal(value),
                            timestamp=ts,
                            properties=props,
                            created_at=ts,
                        )
                    )
            day += timedelta(days=1)
        Event.objects.bulk_create(rows, batch_size=2000)
        self.draw_credits(customer, rows, features)
        # Balances agree with the events of their current period.
        for balance in Balance.objects.filter(customer=customer).select_related("feature"):
            if balance.feature.type == "boolean" or balance.feature.usage_type == "continuous_use":
                continue
            period_start = (
                add_intervals(balance.next_reset_at, balance.interval, balance.interval_count, -1)
                if balance.next_reset_at
                else customer.created_at
            )
            used = Event.objects.filter(
                customer=customer, feature=balance.feature, timestamp__gte=period_start
            ).aggregate(s=Sum("value"))["s"] or Decimal(0)
            remaining = balance.allowance - used
            if remaining < 0 and not balance.overage_allowed:
                remaining = Decimal(0)
            Balance.objects.filter(pk=balance.pk).update(remaining=remaining)
        seats = Balance.objects.filter(customer=customer, feature__feature_id="seats").order_by("id").first()
        if seats:
            Balance.objects.filter(pk=seats.pk).update(
                remaining=seats.allowance - min(seats.allowance, rng.randint(1, int(seats.allowance) or 1))
            )

    def draw_credits(self, customer: Customer, rows: list[Event], features: dict) -> None:
        """The AI credits the replies and images drew, as a track records them: an event of the pool per use,
        in credits at the schema's cost, linked to the use, and none beyond what each month's pool held (it
        allows no overage)."""
        pool = Balance.objects.filter(customer=customer, feature=features["ai_credits"]).first()
        if pool is None or pool.next_reset_at is None:
            return
        costs = {
            line.metered_feature_id: line.credit_cost
            for line in CreditCost.objects.filter(credit_system=features["ai_credits"])
        }
        left: dict[int, Decimal] = {}
        draws = []
        for event in sorted(rows, key=lambda e: e.timestamp):
            months_back = 0
            while add_intervals(pool.next_reset_at, pool.interval, pool.interval_count, -(months_back + 1)) > (
                event.timestamp
            ):
                months_back += 1
            available = left.get(months_back, pool.allowance)
            if event.feature_id == features["ai_credits"].pk:
                left[months_back] = max(Decimal(0), available - event.value)
                continue
            if event.feature_id not in costs:
                continue
            drawn = min(available, event.value * costs[event.feature_id])
            left[months_back] = available - drawn
            if drawn > 0:
                draws.append(
                    Event(
                        customer=customer,
                        feature=features["ai_credits"],
                        event_name=event.event_name,
                        value=drawn,
                        timestamp=event.timestamp,
                        properties=event.properties,
                        drawn_for=event,
                        created_at=event.created_at,
                    )
                )
        Event.objects.bulk_create(draws, batch_size=2000)

    def create_invoices(self, customer: Customer, product: Product, rng: random.Random, created_at) -> None:
        fixed = product.prices.filter(type="fixed").first()
        if fixed is None:
            return
        month = add_intervals(created_at, "month")
        invoices = []
        n = 0
        while month <= self.now and n < 12:
            n += 1
            month = add_intervals(created_at, "month", 1, n)
        for k in range(max(0, n - 4), n):
            issued = add_intervals(created_at, "month", 1, k)
            if issued > self.now:
                break
            latest = k == n - 1
            status = "paid"
            if latest and rng.random() < 0.25:
                status = "open"
            elif rng.random() < 0.06:
                status = "void"
            overage = rng.choice([0, 0, 0, rng.randint(100, 9000)]) if product.product_id == "scale" else 0
            total = fixed.amount + overage
            token = f"{'test_' if customer.env == 'sandbox' else 'live_'}{rng.getrandbits(64):016x}"
            invoices.append(
                Invoice(
                    customer=customer,
                    stripe_id=f"in_demo_{customer.env[0]}{customer.pk}_{k}",
                    status=status,
                    total=total,
                    amount_paid=total if status == "paid" else 0,
                    currency=fixed.currency,
                    hosted_invoice_url=f"https://invoice.stripe.com/i/acct_demo/{token}",
                    invoice_pdf=f"https://pay.stripe.com/invoice/acct_demo/{token}/pdf",
                    product_ids=[product.product_id],
                    created_at=issued,
                )
            )
        Invoice.objects.bulk_create(invoices)

    def acme_extras(self, customer: Customer, cat: dict, users: dict) -> None:
        """The showcase customer: a coupon, manual edits with reasons, an audit trail."""
        reward_apply(customer=customer, reward=cat["rewards"]["20_off_3m"], actor=users["ops"])
        messages = Balance.objects.get(customer=customer, feature__feature_id="messages")
        balance_set(
            balance=messages,
            new_balance=messages.remaining + 500,
            actor=users["support"],
            reason="Credit for the 14 Nov outage (ticket #4821)",
        )
        api = Balance.objects.get(customer=customer, feature__feature_id="api_calls")
        balance_add(balance=api, delta=10000, actor=users["ops"], reason="Migration weekend: extra headroom")
