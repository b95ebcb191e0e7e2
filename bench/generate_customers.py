"""The benchmark's customers and what each holds: the customers, their plans (customer products), their
balances and their invoices, written with COPY.

Mixed into bench/generate.py's Generator, whose helpers (`_cursor`, `_created`, `_loading_session`) and
settings (`scale`, `typical`, `now`) it uses."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from bench.copy_load import Table
from bench.dataset import (
    DOMAINS,
    ENTERPRISE,
    FIRST,
    FREE,
    LAST,
    PLAN_NAMES,
    PRO,
    SCALE,
    customer_ref,
    is_deleted,
    is_sandbox,
    plan_of,
    ts,
)


class CustomerRows:
    # - bulk tables (COPY)

    def customers(self) -> int:
        from customers.models import Customer

        table = Table(
            Customer,
            [
                "id",
                "customer_id",
                "env",
                "name",
                "email",
                "fingerprint",
                "metadata",
                "stripe_id",
                "created_at",
                "updated_at",
                "deleted_at",
            ],
        )
        scale, typical = self.scale, self.typical
        rng = random.Random(scale.seed)
        now = ts(self.now)

        def lines():
            for k in range(scale.customers):
                created = ts(self._created(k))
                plan = plan_of(k, scale, typical)
                first, last = rng.choice(FIRST), rng.choice(LAST)
                if k == 0:
                    name, email = "Megacorp Industries", "billing@megacorp.example"
                else:
                    name = f"{first.capitalize()} {last.capitalize()}"
                    email = f"{first}.{last}{rng.randrange(1000)}@{rng.choice(DOMAINS)}"
                fingerprint = f"fp_{rng.getrandbits(40):010x}" if k % 3 == 0 else ""
                metadata = '{"tier": "growth"}' if k % 4 == 0 else "{}"
                stripe = f"cus_B{k:012d}" if plan != FREE else ""
                deleted = now if is_deleted(k, scale, typical) else "\\N"
                env = "sandbox" if is_sandbox(k) else "live"
                yield (
                    f"{k + 1}\t{customer_ref(k)}\t{env}\t{name}\t{email}\t{fingerprint}\t{metadata}\t{stripe}\t"
                    f"{created}\t{created}\t{deleted}"
                )

        with self._cursor() as cur:
            return table.load(cur, lines())

    def customer_products(self, cat: dict) -> int:
        from billing.models import CustomerProduct

        table = Table(
            CustomerProduct,
            [
                "id",
                "customer_id",
                "product_id",
                "status",
                "started_at",
                "current_period_start",
                "current_period_end",
                "stripe_subscription_id",
            ],
        )
        pids = {code: cat["products"][PLAN_NAMES[code]].pk for code in PLAN_NAMES}
        scale, typical, now = self.scale, self.typical, self.now

        def lines():
            for k in range(scale.customers):
                plan = plan_of(k, scale, typical)
                created = self._created(k)
                status = "active"
                if plan in (PRO, SCALE) and k % 23 == 7:
                    status = "past_due"
                elif plan in (PRO, SCALE) and k % 29 == 11:
                    status = "trialing"
                if plan == FREE:
                    period = "\\N\t\\N\t"
                else:
                    start = now - timedelta(days=k % 30)
                    period = f"{ts(start)}\t{ts(start + timedelta(days=30))}\tsub_B{k:012d}"
                yield f"{k + 1}\t{k + 1}\t{pids[plan]}\t{status}\t{ts(created)}\t{period}"

        with self._cursor() as cur:
            return table.load(cur, lines())

    def balances(self, cat: dict) -> int:
        from billing.models import Balance, ProductItem

        table = Table(
            Balance,
            [
                "id",
                "customer_id",
                "feature_id",
                "customer_product_id",
                "allowance",
                "adjustment",
                "remaining",
                "unlimited",
                "overage_allowed",
                "interval",
                "next_reset_at",
                "created_at",
                "updated_at",
            ],
        )
        items = {
            code: list(ProductItem.objects.filter(product=cat["products"][PLAN_NAMES[code]]).order_by("id"))
            for code in PLAN_NAMES
        }
        scale, typical, now = self.scale, self.typical, self.now
        rng = random.Random(scale.seed + 1)

        def lines():
            pk = 0
            for k in range(scale.customers):
                plan = plan_of(k, scale, typical)
                created = ts(self._created(k))
                reset = ts(now + timedelta(days=1 + k % 29, seconds=k % 86400))
                for item in items[plan]:
                    pk += 1
                    next_reset = "\\N" if item.interval == "lifetime" else reset
                    allowance = int(item.included)
                    used = rng.randrange(allowance + 1) if allowance else 0
                    if item.overage_allowed and k % 7 == 0:
                        used = allowance + rng.randrange(1000)  # in overage
                    yield (
                        f"{pk}\t{k + 1}\t{item.feature_id}\t{k + 1}\t{allowance}\t0\t{allowance - used}\t"
                        f"f\t{'t' if item.overage_allowed else 'f'}\t{item.interval}\t"
                        f"{next_reset}\t{created}\t{created}"
                    )

        with self._cursor() as cur:
            return table.load(cur, lines())

    def invoices(self) -> int:
        from billing.models import Invoice

        table = Table(
            Invoice,
            [
                "id",
                "customer_id",
                "stripe_id",
                "status",
                "total",
                "amount_paid",
                "currency",
                "hosted_invoice_url",
                "invoice_pdf",
                "product_ids",
                "created_at",
            ],
        )
        scale, typical, now = self.scale, self.typical, self.now

        def lines():
            pk = 0
            for k in range(scale.customers):
                plan = plan_of(k, scale, typical)
                if plan == FREE:
                    continue
                count = scale.heavy_invoices if k == 0 else 3
                amount = {PRO: 9900, SCALE: 25000, ENTERPRISE: 420_000}[plan]
                products = json.dumps([PLAN_NAMES[plan]])
                for n in range(count):
                    pk += 1
                    status = "open" if n == 0 and k % 4 == 0 else "void" if n % 17 == 5 else "paid"
                    total = amount + (n * 37 % 900) * 100 if plan != PRO else amount
                    token = f"B{pk:012d}"
                    issued = ts(now - timedelta(hours=6 * n if k == 0 else 24 * 30 * n, seconds=k % 3600))
                    yield (
                        f"{pk}\t{k + 1}\tin_{token}\t{status}\t{total}\t{total if status == 'paid' else 0}\tusd\t"
                        f"https://invoice.stripe.com/i/acct_bench/{token}\t"
                        f"https://pay.stripe.com/invoice/acct_bench/{token}/pdf\t{products}\t{issued}"
                    )

        with self._cursor() as cur:
            return table.load(cur, lines())
