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
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

from bench.copy_load import Progress
from bench.dataset import SCALES, Scale, customer_ref, is_sandbox, typical_index
from bench.generate_catalogue import CatalogueRows
from bench.generate_customers import CustomerRows
from bench.generate_events import EventRows

# --- the generator --------------------------------------------------------------------------------

APP_TABLES = [
    "billing_dailycreditdraw",
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


class Generator(CatalogueRows, CustomerRows, EventRows):
    """Loads the dataset: the catalogue (bench/generate_catalogue.py), the customers and what they hold
    (bench/generate_customers.py), the events and audit entries (bench/generate_events.py); here, the run
    itself, the indexes dropped before the load and rebuilt after it, and what follows the load."""

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
