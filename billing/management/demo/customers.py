"""The demo customers: their plans, balances, rewards, a quarter of usage events and invoices."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from billing.intervals import add_intervals
from billing.models import (
    Balance,
    CreditCost,
    CustomerProduct,
    Event,
    Invoice,
    Product,
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
DAYS = 90  # of usage history


class CustomersMixin:
    """The demo customers, each created once (by its id) and given its history."""

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
