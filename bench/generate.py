"""Load a large, realistic dataset into PostgreSQL with COPY.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m bench.generate --scale full

One heavy customer (50 balances, 2,000 invoices, 2,000,000 events), a typical one, and 1,000,000
customers across sandbox and live with 20,000,000 events over the last year. Everything is
deterministic (seeded) and written as COPY text straight from Python; foreign-key triggers are off
for the loading session (`session_replication_role = replica`: the generator writes consistent ids
itself) and secondary indexes are dropped before the load and rebuilt once after it, which is what
makes 20,000,000 rows load in minutes on two cores.

It only writes into an empty database or one it generated before (it keeps its parameters in the
`bench_meta` table and reuses a matching dataset instead of loading it again).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FIRST = [
    "ada",
    "grace",
    "alan",
    "linus",
    "margaret",
    "ken",
    "barbara",
    "dennis",
    "frances",
    "edsger",
    "radia",
    "tim",
    "hedy",
    "john",
    "katherine",
    "donald",
    "sophie",
    "guido",
    "anita",
    "bjarne",
    "joan",
    "niklaus",
    "olivia",
    "liam",
    "emma",
    "noah",
    "amelia",
    "oliver",
    "ava",
    "elijah",
    "mia",
    "lucas",
    "isabella",
    "mateo",
    "zoe",
    "kai",
    "nora",
    "leo",
    "aria",
    "ezra",
    "maya",
    "hugo",
    "ines",
    "yuki",
    "priya",
    "omar",
    "fatima",
    "chen",
    "sofia",
    "ivan",
]
LAST = [
    "lovelace",
    "hopper",
    "turing",
    "torvalds",
    "hamilton",
    "thompson",
    "liskov",
    "ritchie",
    "allen",
    "dijkstra",
    "perlman",
    "lamarr",
    "mccarthy",
    "johnson",
    "knuth",
    "wilson",
    "rossum",
    "borg",
    "stroustrup",
    "clarke",
    "wirth",
    "smith",
    "garcia",
    "martin",
    "mueller",
    "rossi",
    "dubois",
    "tanaka",
    "kim",
    "singh",
    "nguyen",
    "silva",
    "cohen",
    "novak",
    "larsen",
    "jensen",
    "petrov",
    "haddad",
    "okafor",
    "mendes",
    "schmidt",
    "moreau",
    "kowalski",
    "berg",
    "fischer",
    "lopez",
    "walker",
    "young",
    "king",
    "wright",
]
DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "fastmail.com",
    "hey.com",
    "acme.io",
    "globex.com",
    "initech.dev",
    "hooli.xyz",
    "umbrella.co",
    "stark.ai",
    "wayne.tech",
    "wonka.shop",
    "cyberdyne.net",
    "aperture.science",
    "tyrell.corp",
    "oscorp.org",
    "vandelay.biz",
]
HEAVY_RESOURCES = [
    "api_calls",
    "messages",
    "ai_credits",
    "input_tokens",
    "output_tokens",
    "storage_gb",
    "bandwidth_gb",
    "emails",
    "sms",
    "seats",
    "builds",
    "build_minutes",
    "deployments",
    "functions",
    "invocations",
    "queries",
    "rows_read",
    "rows_written",
    "images",
    "videos",
    "transcripts",
    "embeddings",
    "searches",
    "webhooks",
    "exports",
]
REGIONS = [
    '{"region": "eu-west-1"}',
    '{"region": "us-east-1"}',
    '{"region": "ap-south-1"}',
    '{"region": "eu-west-1", "model": "large"}',
    '{"region": "us-east-1", "model": "small"}',
]
TYPICAL_PROPS = ["{}", "{}", "{}", '{"endpoint": "/search"}', '{"endpoint": "/chat"}']
VALUES = ["1", "1", "1", "2", "1", "5", "1", "10", "3", "1", "0.5", "1", "25", "1", "2", "100"]

FREE, PRO, SCALE, ENTERPRISE = 0, 1, 2, 3
PLAN_NAMES = {FREE: "free", PRO: "pro", SCALE: "scale", ENTERPRISE: "enterprise"}


@dataclass(frozen=True)
class Scale:
    customers: int = 1_000_000
    events: int = 20_000_000
    heavy_events: int = 2_000_000
    heavy_invoices: int = 2_000
    heavy_balances: int = 50
    track_customers: int = 10_000
    days: int = 365
    seed: int = 7

    def check(self) -> None:
        if self.customers < 100 or self.track_customers * 5 + 10 > self.customers:
            raise SystemExit("Need at least 100 customers and 5 × track_customers of them.")
        if not 0 < self.heavy_events < self.events:
            raise SystemExit("heavy_events must be between 0 and events.")
        if not 1 <= self.heavy_balances <= 2 * len(HEAVY_RESOURCES):
            raise SystemExit(f"heavy_balances must be between 1 and {2 * len(HEAVY_RESOURCES)}.")


SCALES = {
    "full": Scale(),
    "small": Scale(customers=100_000, events=2_000_000, heavy_events=200_000, track_customers=2_000),
    "tiny": Scale(customers=1_000, events=20_000, heavy_events=5_000, heavy_invoices=60, track_customers=40),
}

# Customer index k → pk k + 1. The heavy customer is k = 0 (the oldest, live); sandbox customers are
# those with k % 5 == 0; the track targets are the sandbox customers k = 5, 10, … (on the scale plan,
# whose api_calls balance allows overage, so every tracked unit is deducted exactly).


def is_sandbox(k: int) -> bool:
    return k % 5 == 0 and k != 0


def customer_ref(k: int) -> str:
    if k == 0:
        return "org_megacorp"
    x = (k * 8_191_230_917_522_617 + 97_531) % 62**9  # a bijection: the multiplier is coprime with 62
    chars = []
    for _ in range(9):
        x, r = divmod(x, 62)
        chars.append(ALPHABET[r])
    return ("user_" if k % 5 in (1, 2, 3) else "org_") + "".join(chars)


def typical_index(scale: Scale) -> int:
    k = scale.customers // 2
    while is_sandbox(k) or k % 97 == 3:
        k += 1
    return k


def plan_of(k: int, scale: Scale, typical: int) -> int:
    if k == 0:
        return ENTERPRISE
    if k == typical:
        return PRO
    if is_sandbox(k) and k // 5 <= scale.track_customers:
        return SCALE
    h = (k * 2_654_435_761) % 1000
    return FREE if h < 700 else PRO if h < 950 else SCALE


def is_deleted(k: int, scale: Scale, typical: int) -> bool:
    return k % 97 == 3 and k != typical and not (is_sandbox(k) and k // 5 <= scale.track_customers)


def ts(dt: datetime) -> str:
    return f"{dt:%Y-%m-%d %H:%M:%S}.{dt.microsecond:06d}+00"


# --- COPY plumbing --------------------------------------------------------------------------------


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, datetime):
        return ts(value.astimezone(UTC))
    return str(value)


class Table:
    """COPY into a model's table: the generator gives some fields (by attname), in order; every
    other concrete field gets its model default, so fields added later keep the generator working."""

    def __init__(self, model, fields: list[str]):
        meta = model._meta
        by_attname = {f.attname: f for f in meta.concrete_fields}
        unknown = [name for name in fields if name not in by_attname]
        if unknown:
            raise SystemExit(f"{meta.db_table} has no columns {unknown}")
        others = [f for f in meta.concrete_fields if f.attname not in fields]
        for f in others:
            if not f.has_default() and not f.null:
                raise SystemExit(f"{meta.db_table}.{f.column} has no default: teach bench/generate.py about it")
        self.table = meta.db_table
        self.columns = [by_attname[name].column for name in fields] + [f.column for f in others]
        self.suffix = "".join("\t" + _copy_text(f.get_default() if f.has_default() else None) for f in others)
        quoted = ", ".join(f'"{c}"' for c in self.columns)
        self.sql = f'COPY "{self.table}" ({quoted}) FROM STDIN'

    def load(self, cursor, lines, batch: int = 20_000) -> int:
        """Write `lines` (each the given fields, tab-separated, no newline) and return their count."""
        count = 0
        buf: list[str] = []
        suffix = self.suffix + "\n"
        with cursor.copy(self.sql) as copy:
            for line in lines:
                buf.append(line + suffix)
                if len(buf) >= batch:
                    copy.write("".join(buf))
                    count += len(buf)
                    buf.clear()
            if buf:
                copy.write("".join(buf))
                count += len(buf)
        return count


class Progress:
    def __init__(self, out=sys.stdout):
        self.out = out
        self.t0 = time.perf_counter()
        self.steps: dict[str, float] = {}

    def step(self, name: str, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        took = time.perf_counter() - start
        self.steps[name] = round(took, 2)
        detail = f" ({result:,} rows, {result / took:,.0f}/s)" if isinstance(result, int) and took > 0 else ""
        print(f"  {name:<28} {took:7.1f} s{detail}", file=self.out, flush=True)
        return result


# --- the generator --------------------------------------------------------------------------------

APP_TABLES = [
    "billing_dailyusage",
    "billing_eventidempotencykey",
    "billing_event",
    "billing_balance",
    "billing_invoice",
    "billing_customerreward",
    "billing_customerproduct",
    "billing_price",
    "billing_productitem",
    "billing_reward",
    "billing_product",
    "billing_feature",
    "customers_auditentry",
    "customers_idempotencyrecord",
    "customers_apikey",
    "customers_customer",
]
LOADED_TABLES = [
    "customers_customer",
    "billing_customerproduct",
    "billing_balance",
    "billing_invoice",
    "billing_eventidempotencykey",
    "billing_event",
    "billing_dailyusage",
    "customers_auditentry",
]


class Generator:
    def __init__(self, scale: Scale, out=sys.stdout, now: datetime | None = None):
        scale.check()
        self.scale = scale
        self.out = out
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.typical = typical_index(scale)
        self.progress = Progress(out)

    # - helpers

    def _cursor(self):
        from django.db import connection

        connection.ensure_connection()
        return connection.connection.cursor()  # the psycopg 3 cursor, for cursor.copy()

    def _exec(self, sql: str, params=None):
        with self._cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def _created(self, k: int) -> datetime:
        span = timedelta(days=3 * self.scale.days)
        return self.now - span + span * (k / self.scale.customers)

    @staticmethod
    def _loading_session(cur) -> None:
        cur.execute("SET session_replication_role = replica")  # no FK triggers: ids are consistent by construction
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")

    # - entry point

    def run(self, *, reuse: bool = True) -> dict:

        self._exec("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        self._restore_indexes()  # after an interrupted run
        params = {**asdict(self.scale), "typical": self.typical}
        stored = dict(self._exec("SELECT key, value::text FROM bench_meta") or [])
        stored = {key: json.loads(value) for key, value in stored.items()}
        if (
            reuse
            and stored.get("params") == params
            and "manifest" in stored
            and self._exec("SELECT count(*) FROM customers_customer")[0][0] == self.scale.customers
        ):
            print("Dataset already loaded with these parameters: reusing it.", file=self.out)
            return stored["manifest"]
        customers = self._exec("SELECT count(*) FROM customers_customer")[0][0]
        if customers and "params" not in stored:
            raise SystemExit(
                "This database holds customers the generator did not make: use a separate database "
                "(e.g. createdb bench and DATABASE_URL=postgres://…/bench)."
            )
        started = time.perf_counter()
        print(f"Generating {self.scale}", file=self.out, flush=True)
        self._exec("DELETE FROM bench_meta WHERE key <> 'dropped_indexes'")
        self._exec("INSERT INTO bench_meta VALUES ('params', %s)", [json.dumps(params)])  # marks the data as ours
        self._exec("TRUNCATE " + ", ".join(APP_TABLES) + " RESTART IDENTITY CASCADE")
        with self._cursor() as cur:
            self._loading_session(cur)
        try:
            self._drop_indexes()
            p = self.progress
            catalogue = p.step("catalogue", self.catalogue)
            p.step("customers", self.customers)
            p.step("customer products", self.customer_products, catalogue)
            p.step("balances", self.balances, catalogue)
            p.step("invoices", self.invoices)
            p.step("events", self.events, catalogue)
            p.step("audit entries", self.audit_entries, catalogue)
        finally:
            self.progress.step("indexes", self._restore_indexes)
            with self._cursor() as cur:
                cur.execute("SET session_replication_role = origin")
        self.progress.step("sequences", self._sequences)
        self.progress.step("live product flags", self._live_product_flags)
        self.progress.step("vacuum analyze", self._vacuum)
        # After the sequences (it writes an audit entry) and the vacuum (which sets the hint bits of the
        # fresh events once, instead of this step's full read of them doing it).
        self.progress.step("daily usage", self._daily_usage)
        manifest = self._manifest(catalogue)
        manifest["load_seconds"] = round(time.perf_counter() - started, 1)
        manifest["steps"] = self.progress.steps
        self._exec("INSERT INTO bench_meta VALUES ('manifest', %s)", [json.dumps(manifest)])
        print(f"Loaded in {manifest['load_seconds']:.0f} s.", file=self.out, flush=True)
        return manifest

    # - indexes: dropped before the load, rebuilt once after it

    def _drop_indexes(self):
        rows = self._exec(
            """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
               JOIN pg_class t ON t.oid = i.indrelid
               WHERE t.relname = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
               ORDER BY 1""",
            [LOADED_TABLES],
        )
        if not rows:
            return
        self._exec(
            "INSERT INTO bench_meta VALUES ('dropped_indexes', %s) ON CONFLICT (key) DO UPDATE "
            "SET value = EXCLUDED.value",
            [json.dumps([d for _, d in rows])],
        )
        for name, _ in rows:
            self._exec(f"DROP INDEX {name}")

    def _restore_indexes(self) -> int:
        stored = self._exec("SELECT value::text FROM bench_meta WHERE key = 'dropped_indexes'")
        if not stored:
            return 0
        definitions = json.loads(stored[0][0])
        for definition in definitions:
            # A partitioned table's index reads "ON ONLY table": built that way it stays invalid, on the parent
            # alone, and no partition gets one. Without ONLY it is built on every partition.
            self._exec(
                definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1)
                .replace("CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX IF NOT EXISTS", 1)
                .replace(" ON ONLY ", " ON ", 1)
            )
        self._exec("DELETE FROM bench_meta WHERE key = 'dropped_indexes'")
        return len(definitions)

    def _daily_usage(self) -> int:
        """The graphs' daily rollup, from the events just loaded (tracks keep it from then on)."""
        from billing import rollup

        self._exec("SET session_replication_role = replica")  # its rows come from consistent events
        try:
            rows = rollup.rebuild()
        finally:
            self._exec("SET session_replication_role = origin")
        self._exec("VACUUM (ANALYZE) billing_dailyusage")
        return rows

    def _sequences(self) -> int:
        for table in APP_TABLES:
            self._exec(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        return len(APP_TABLES)

    def _live_product_flags(self) -> int:
        """Customer.has_live_product, which the plan services keep, from the customer products just loaded."""
        from billing.models import live_product_exists
        from customers.models import Customer

        return Customer.objects.exclude(has_live_product=live_product_exists()).update(
            has_live_product=live_product_exists()
        )

    def _vacuum(self) -> int:
        for table in LOADED_TABLES:
            self._exec(f"VACUUM (ANALYZE) {table}")
        self._exec("ANALYZE")
        return len(LOADED_TABLES)

    # - catalogue (small: the ORM)

    def catalogue(self) -> dict:
        from decimal import Decimal

        from billing.models import Feature, Price, Product, ProductItem, Reward

        def feature(fid, name, ftype="metered", usage="single_use"):
            return Feature.objects.create(
                feature_id=fid,
                name=name,
                type=ftype,
                usage_type=usage,
                event_names=[fid.rstrip("s") + "_used"] if ftype != "boolean" else [],
            )

        f = {
            "messages": feature("messages", "Messages"),
            "api_calls": feature("api_calls", "API calls"),
            "seats": feature("seats", "Seats", usage="continuous_use"),
            "sso": feature("sso", "SSO", "boolean", ""),
        }
        heavy = []
        for n in range(self.scale.heavy_balances):
            resource = HEAVY_RESOURCES[n % len(HEAVY_RESOURCES)]
            tier = "" if n < len(HEAVY_RESOURCES) else "priority_"
            fid = f"ent_{tier}{resource}"
            heavy.append(feature(fid, f"{'Priority ' if tier else ''}{resource.replace('_', ' ').capitalize()}"))
        month = {"interval": "month"}
        products = {}
        for pid, name, amount, items in (
            ("free", "Free", 0, [("messages", 100, False, month), ("api_calls", 1000, False, month)]),
            (
                "pro",
                "Pro",
                9900,
                [
                    ("messages", 5000, False, month),
                    ("api_calls", 50_000, False, month),
                    ("seats", 10, False, {"interval": "lifetime"}),
                    ("sso", 0, False, {"interval": "lifetime"}),
                ],
            ),
            (
                "scale",
                "Scale",
                25000,
                [
                    ("messages", 20_000, True, month),
                    ("api_calls", 250_000, True, month),
                    ("seats", 50, False, {"interval": "lifetime"}),
                    ("sso", 0, False, {"interval": "lifetime"}),
                ],
            ),
        ):
            product = Product.objects.create(product_id=pid, name=name, is_default=pid == "free")
            if amount:
                Price.objects.create(product=product, type="fixed", amount=amount, currency="usd", interval="month")
            for fid, included, overage, interval in items:
                ProductItem.objects.create(
                    product=product, feature=f[fid], included=included, overage_allowed=overage, **interval
                )
            products[pid] = product
        Price.objects.create(
            product=products["scale"],
            type="usage",
            feature=f["api_calls"],
            amount=100,
            billing_units=1000,
            currency="usd",
            interval="month",
        )
        base = Product.objects.create(product_id="enterprise", name="Enterprise")
        Price.objects.create(product=base, type="fixed", amount=500_000, currency="usd", interval="month")
        custom = Product.objects.create(
            product_id="enterprise", name="Enterprise (Megacorp)", base_product=base, custom_for_id=1
        )
        Price.objects.create(product=custom, type="fixed", amount=420_000, currency="usd", interval="month")
        for n, feat in enumerate(heavy):
            ProductItem.objects.create(
                product=custom,
                feature=feat,
                included=1_000_000 * (1 + n % 5),
                overage_allowed=n % 3 == 0,
                interval="month",
            )
        products["enterprise"] = custom
        rewards = [
            Reward.objects.create(
                reward_id="partner_10",
                name="10% off forever (partner)",
                type="percentage_discount",
                value=Decimal(10),
                duration="forever",
            ),
            Reward.objects.create(
                reward_id="spring_20",
                name="20% off for 3 months",
                type="percentage_discount",
                value=Decimal(20),
                duration="months",
                duration_months=3,
            ),
        ]
        return {"features": f, "heavy_features": heavy, "products": products, "rewards": rewards}

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

    def events(self, cat: dict) -> int:
        """Events in time order over the last `days`, the heavy customer's interleaved with everyone
        else's as they would arrive; an event only belongs to a customer that existed by then."""
        from billing.models import Event

        table = Table(
            Event,
            [
                "id",
                "customer_id",
                "feature_id",
                "event_name",
                "value",
                "timestamp",
                "properties",
                "idempotency_key",
                "api_key_id",
                "created_at",
            ],
        )
        scale, typical = self.scale, self.typical
        n_events, n_heavy, n_customers = scale.events, scale.heavy_events, scale.customers
        heavy_ids = [f.pk for f in cat["heavy_features"]]
        weights = [1 / (n + 1) for n in range(len(heavy_ids))]  # Zipf: a few features carry most usage
        total_w = sum(weights)
        heavy_pick: list[str] = []
        for fid, w in zip(heavy_ids, weights, strict=True):
            heavy_pick += [str(fid)] * max(1, round(1000 * w / total_w))
        n_pick = len(heavy_pick)
        plans = bytes(plan_of(k, scale, typical) for k in range(n_customers))
        messages, api_calls = str(cat["features"]["messages"].pk), str(cat["features"]["api_calls"].pk)
        start = self.now - timedelta(days=scale.days)
        start_us = int(start.timestamp() * 1_000_000)
        span_us = scale.days * 86_400 * 1_000_000
        first_created = self._created(0).timestamp() * 1_000_000
        created_span = 3 * scale.days * 86_400 * 1_000_000
        values, n_values = VALUES, len(VALUES)
        props_heavy, props_typical = REGIONS, TYPICAL_PROPS

        def lines(part: int, lo: int, hi: int):
            rand = random.Random(scale.seed + 2 + part).random
            minute = -1
            prefix = ""
            for i in range(lo, hi):
                t = start_us + i * span_us // n_events
                m, rest = divmod(t, 60_000_000)
                if m != minute:
                    minute = m
                    prefix = f"{datetime.fromtimestamp(m * 60, UTC):%Y-%m-%d %H:%M}:"
                stamp = f"{prefix}{rest // 1_000_000:02d}.{rest % 1_000_000:06d}+00"
                if (i * n_heavy) // n_events != ((i + 1) * n_heavy) // n_events:
                    customer = 1
                    feature = heavy_pick[int(rand() * n_pick)]
                    props = props_heavy[i % 5]
                else:
                    limit = int(n_customers * (t - first_created) / created_span)
                    r = rand()
                    k = 1 + int((limit - 1) * r * r)
                    plan = plans[k]
                    feature = api_calls if plan == SCALE or (plan == PRO and i & 1) else messages
                    customer = k + 1
                    props = props_typical[i % 5]
                yield f"{i + 1}\t{customer}\t{feature}\t\t{values[i % n_values]}\t{stamp}\t{props}\t\\N\t\\N\t{stamp}"

        # Two loaders, each on its own connection, keep both cores busy (PostgreSQL's COPY is the
        # slower side of the pipe).
        parts = 2 if n_events >= 100_000 else 1
        bounds = [n_events * p // parts for p in range(parts + 1)]
        counts = [0] * parts
        errors: list[BaseException] = []

        def load(part: int) -> None:
            from django.db import connection

            try:
                with self._cursor() as cur:
                    self._loading_session(cur)
                    counts[part] = table.load(cur, lines(part, bounds[part], bounds[part + 1]))
            except BaseException as exc:  # re-raised below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=load, args=(part,)) for part in range(parts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return sum(counts)

    def audit_entries(self, cat: dict) -> int:
        from customers.models import AuditEntry

        table = Table(
            AuditEntry,
            [
                "id",
                "created_at",
                "actor_label",
                "action",
                "env",
                "customer_id",
                "customer_ref",
                "target_type",
                "target_id",
                "before",
                "after",
                "reason",
            ],
        )
        heavy_balances = list(range(1, len(cat["heavy_features"]) + 1))  # customer 1's balances come first

        def lines():
            for n in range(300):
                when = ts(self.now - timedelta(hours=29 * n))
                balance = heavy_balances[n % len(heavy_balances)]
                yield (
                    f"{n + 1}\t{when}\tsupport\tbalance.add\tlive\t1\torg_megacorp\tbalance\t{balance}\t"
                    f'{{"remaining": {1000 + n}}}\t{{"remaining": {1500 + n}}}\tGoodwill credit, ticket #{4000 + n}'
                )

        with self._cursor() as cur:
            count = table.load(cur, lines())
        from billing.models import CustomerReward

        CustomerReward.objects.create(customer_id=1, reward=cat["rewards"][0])
        return count

    # - what the measurements need

    def _manifest(self, cat: dict) -> dict:
        scale, typical = self.scale, self.typical
        track = [customer_ref(5 * j) for j in range(1, scale.track_customers + 1)]
        counts = dict(
            self._exec(
                "SELECT 'customers', count(*) FROM customers_customer UNION ALL "
                "SELECT 'balances', count(*) FROM billing_balance UNION ALL "
                "SELECT 'invoices', count(*) FROM billing_invoice UNION ALL "
                "SELECT 'events', count(*) FROM billing_event UNION ALL "
                "SELECT 'customer_products', count(*) FROM billing_customerproduct"
            )
        )
        heavy = dict(
            self._exec(
                "SELECT 'balances', count(*) FROM billing_balance WHERE customer_id = 1 UNION ALL "
                "SELECT 'invoices', count(*) FROM billing_invoice WHERE customer_id = 1 UNION ALL "
                "SELECT 'events', count(*) FROM billing_event WHERE customer_id = 1"
            )
        )
        typical_events = self._exec("SELECT count(*) FROM billing_event WHERE customer_id = %s", [typical + 1])[0][0]
        size = self._exec("SELECT pg_database_size(current_database())")[0][0]
        return {
            "generated_at": self.now.isoformat(),
            "scale": asdict(scale),
            "counts": counts,
            "sandbox_customers": sum(1 for k in range(scale.customers) if is_sandbox(k)),
            "heavy": {"customer_id": "org_megacorp", "env": "live", **heavy},
            "typical": {"customer_id": customer_ref(typical), "env": "live", "events": typical_events, "plan": "pro"},
            "track": {"env": "sandbox", "feature_id": "api_calls", "hot": track[0], "many": track},
            "database_bytes": size,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="full")
    for name in ("customers", "events", "heavy_events", "heavy_invoices", "track_customers"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, help=f"override the scale's {name}")
    parser.add_argument("--force", action="store_true", help="regenerate even if a matching dataset is loaded")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    overrides = {
        k: getattr(args, k)
        for k in ("customers", "events", "heavy_events", "heavy_invoices", "track_customers")
        if getattr(args, k) is not None
    }
    scale = replace(scale, **overrides)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autumn_admin.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    manifest = Generator(scale).run(reuse=not args.force)
    print(json.dumps(manifest["counts"]))


if __name__ == "__main__":
    main()
