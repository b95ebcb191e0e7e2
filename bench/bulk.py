"""The customers list's filters and a bulk job, measured on the benchmark's dataset:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m bench.bulk [--job-customers 100000]

Loads (or reuses) the dataset of bench/generate.py, gives a share of customers coupons and pending
cancellations (the generator makes neither), serves the app with granian (the README's production server) and measures:
- the list's p50 for every filter the page offers, alone and combined, and the feature sorts;
- a bulk job (Add to balance of API calls) over N customers, run by `manage.py jobs_worker`: customers per
  second, and the list's and a customer page's p50 while it runs beside their p50 when idle.
Prints a table; --json writes every figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench import loadgen
from bench.dataset import SCALES, Scale
from bench.generate import Generator
from bench.measuring import dashboard_session
from bench.plan import Plan, setup_django
from bench.server import Server, server_env

TARGET_P50_MS = 100.0
ROOT = Path(__file__).resolve().parent.parent

# Every filter the page offers, one at a time, and a few combinations; sorts by a feature's balance.
FILTERS = {
    "unfiltered": {},
    "balance below 10": {"feature": "api_calls", "balance": "below", "value": "10"},
    "balance below 10 %": {"feature": "api_calls", "balance": "below_pct", "value": "10"},
    "in overage": {"feature": "api_calls", "balance": "overage"},
    "unlimited": {"feature": "api_calls", "balance": "unlimited"},
    "status active": {"status": "active"},
    "status trialing": {"status": "trialing"},
    "status past due": {"status": "past_due"},
    "status cancelling": {"status": "cancelling"},
    "status scheduled": {"status": "scheduled"},
    "status no product": {"status": "none"},
    "product pro": {"product": "pro"},
    "created after": {"created_after": "__recent__"},
    "created before": {"created_before": "__old__"},
    "has a coupon": {"coupon": "yes"},
    "no coupon": {"coupon": "no"},
    "linked to Stripe": {"stripe": "yes"},
    "not linked to Stripe": {"stripe": "no"},
    "below 10 % + no coupon + not linked": {
        "feature": "api_calls",
        "balance": "below_pct",
        "value": "10",
        "coupon": "no",
        "stripe": "no",
    },
    "past due + has a coupon": {"status": "past_due", "coupon": "yes"},
    "created after + active + linked": {"created_after": "__recent__", "status": "active", "stripe": "yes"},
    "search + below 10 %": {"q": "gmail", "feature": "api_calls", "balance": "below_pct", "value": "10"},
}
SORTS = {
    "sort: remaining, least first": {"feature": "api_calls", "sort": "remaining"},
    "sort: usage, most first": {"feature": "api_calls", "sort": "-usage"},
}


def prepare(env: str, share: int = 50) -> None:
    """Give one customer in `share` a coupon and one in `share` a pending cancellation (idempotent)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO billing_reward (reward_id, name, type, value, currency, duration, promo_codes, active,"
            " created_at, stripe_coupon_id, stripe_live_coupon_id) SELECT 'bench_coupon', 'Bench 10 %',"
            " 'percentage_discount', 10, 'usd', 'forever', '[]', true, now(), '', ''"
            " WHERE NOT EXISTS (SELECT 1 FROM billing_reward WHERE reward_id = 'bench_coupon')"
        )
        cur.execute("SELECT id FROM billing_reward WHERE reward_id = 'bench_coupon'")
        reward = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM billing_customerreward WHERE reward_id = %s", [reward])
        if not cur.fetchone()[0]:
            cur.execute(
                "INSERT INTO billing_customerreward (customer_id, reward_id, applied_at) "
                "SELECT id, %s, now() FROM customers_customer WHERE id %% %s = 3",
                [reward, share],
            )
            cur.execute(
                "UPDATE billing_customerproduct SET canceled_at = now() WHERE customer_id %% %s = 7 "
                "AND status IN ('active', 'trialing', 'past_due')",
                [share],
            )
    # Vacuumed as autovacuum would leave them: the updates above clear the visibility map of most pages, and
    # the filters' index-only scans would visit the heap until a vacuum sets it again.
    with connection.cursor() as cur:
        for table in ("billing_customerreward", "billing_customerproduct", "billing_balance"):
            cur.execute(f"VACUUM (ANALYZE) {table}")


def dates(env: str) -> dict[str, str]:
    """A "created after" that keeps about a tenth of the customers, and a "created before" another tenth."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT percentile_disc(0.9) WITHIN GROUP (ORDER BY created_at),"
            " percentile_disc(0.1) WITHIN GROUP (ORDER BY created_at) FROM customers_customer WHERE env = %s",
            [env],
        )
        recent, old = cur.fetchone()
    return {"__recent__": recent.date().isoformat(), "__old__": old.date().isoformat()}


def _query(params: dict, when: dict) -> dict:
    return {k: when.get(v, v) for k, v in params.items()}


def job_selection(env: str, customers: int):
    """The first `customers` customers of `env` that have an API calls balance (by id)."""
    from billing.models import Balance
    from customers.models import Customer

    with_calls = Balance.objects.filter(feature__feature_id="api_calls").values("customer_id")
    ids = Customer.objects.filter(env=env, deleted_at__isnull=True, pk__in=with_calls).order_by("pk")
    edge = ids.values_list("pk", flat=True)[customers - 1 : customers].first()
    return Customer.objects.filter(env=env, deleted_at__isnull=True, pk__in=with_calls, pk__lte=edge or 0)


def measure(database_url: str, scale: Scale, plan: Plan, *, job_customers: int, out=sys.stdout) -> dict:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from billing.models import BulkJob
    from billing.services import bulk

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    call_command("migrate", verbosity=0)
    manifest = Generator(scale, out=out).run()
    env = manifest["heavy"]["env"]  # live: the larger environment
    prepare(env)
    user, cookie = dashboard_session(env)
    when = dates(env)
    typical = f"/customers/{manifest['typical']['customer_id']}/"
    report: dict = {"env": env, "filters": [], "job": {}}

    # The production server (granian), kept-alive connections as a browser keeps them.
    with Server(database_url, workers=plan.worker_count, kind=plan.server, threads=plan.threads) as server:
        say(f"{plan.server}: {plan.worker_count} workers × {plan.threads} threads on 127.0.0.1:{server.port}")

        def p50(name: str, path: str, query: dict | None = None, **kw) -> dict:
            request = loadgen.get(path, cookie=cookie, query=query or None)
            result = loadgen.run_load(
                server.port,
                name,
                [request],
                concurrency=1,
                seconds=plan.seconds,
                warmup=plan.warmup,
                min_requests=plan.min_page_requests,
                keep_alive=True,
                **kw,
            )
            summary = result.summary()
            say(
                f"  {name:<40} p50 {summary['p50_ms']:8.2f} ms  p95 {summary['p95_ms']:8.2f}  "
                f"n={summary['requests']} errors={summary['errors']}"
            )
            if result.failures:
                say(f"    first failure: {result.failures[0][:200]!r}")
            return summary

        for name, params in {**FILTERS, **SORTS}.items():
            summary = p50(name, "/customers/", _query(params, when))
            report["filters"].append({**summary, "filter": name, "query": _query(params, when)})

        idle = {"list": p50("idle: customers list", "/customers/"), "page": p50("idle: customer page", typical)}
        if not job_customers:  # --job-customers 0: the filters only
            report["job"] = {"customers": 0, "idle": idle}
            return report

        selection = job_selection(env, job_customers)
        job = bulk.bulk_job_start(
            env=env,
            customers=selection,
            got=bulk.bulk_input(bulk.ADD_BALANCE, {"feature": "api_calls", "amount": "1000"}),
            actor=User.objects.get(pk=user.pk),
            reason="benchmark",
            filter_text=f"the first {job_customers:,} customers with API calls",
        )
        say(f"job {job.pk}: {job.total:,} customers")
        worker_env = {**server_env(database_url, ""), "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "autumn_admin.settings"}
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "jobs_worker", "--interval", "0.2"],
            cwd=ROOT,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while BulkJob.objects.get(pk=job.pk).started_at is None:
                time.sleep(0.1)
            busy = {
                "list": p50("busy: customers list", "/customers/"),
                "page": p50("busy: customer page", typical),
            }
            while not BulkJob.objects.get(pk=job.pk).is_finished:
                time.sleep(0.5)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        job.refresh_from_db()
        seconds = (job.finished_at - job.started_at).total_seconds()
        report["job"] = {
            "customers": job.total,
            "done": job.done,
            "skipped": job.skipped,
            "failed": job.failed,
            "seconds": round(seconds, 1),
            "customers_per_second": round(job.processed / seconds, 1) if seconds else None,
            "idle": idle,
            "busy": busy,
        }
        say(
            f"job: {job.processed:,} customers in {seconds:.1f} s = {job.processed / seconds:,.0f}/s "
            f"(done {job.done:,}, skipped {job.skipped:,}, failed {job.failed:,})"
        )
    return report


def measure_in_process(env: str, when: dict, *, repeats: int = 7, out=sys.stdout) -> list[dict]:
    """Each filter's page as the list builds it (`list_page`: the capped count, the rows and their live
    products) in this process, without HTTP or templates: the median of `repeats` runs after one warm-up."""
    import statistics

    from django.http import QueryDict

    from autumn_admin.dashboard import customer_list as listing
    from autumn_admin.dashboard.views.customer_list import list_page

    rows = []
    for name, params in {**FILTERS, **SORTS}.items():
        query = QueryDict(mutable=True)
        query.update(_query(params, when))
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            filters = listing.ListFilters.from_query(query)
            page = list_page(env, filters, listing.customer_search(env, filters), None)
            shown = [(c.pk, len(listing.live_products(c))) for c in page.object_list]
            times.append((time.perf_counter() - start) * 1000)
        median = statistics.median(times[1:])
        count = "not counted" if page.count is None else f"{page.count:,}{'+' if page.more else ''}"
        print(f"  {name:<40} {median:8.1f} ms  rows {len(shown):3}  count {count}", file=out, flush=True)
        rows.append({"filter": name, "in_process_ms": round(median, 1), "rows": len(shown), "count": count})
    return rows


def print_report(report: dict, out=sys.stdout) -> None:
    def say(text=""):
        print(text, file=out)

    say(f"\nFilters of the customers list ({report['env']}), p50 at concurrency 1 (target ≤ {TARGET_P50_MS:.0f} ms):")
    for row in report["filters"]:
        flag = "ok" if row["p50_ms"] <= TARGET_P50_MS else "OVER"
        say(f"  {row['filter']:<40} {row['p50_ms']:8.1f} ms  {flag}")
    job = report["job"]
    if not job["customers"]:
        return
    say(f"\nBulk job: {job['customers']:,} customers, {job['customers_per_second']} customers/s")
    for what in ("list", "page"):
        idle, busy = job["idle"][what]["p50_ms"], job["busy"][what]["p50_ms"]
        say(f"  {what:<5} p50 idle {idle:7.1f} ms, while the job runs {busy:7.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="full")
    parser.add_argument("--events", type=int, help="override the scale's events (the filters don't read them)")
    parser.add_argument("--heavy-events", type=int)
    parser.add_argument("--job-customers", type=int, default=100_000, help="0: measure the filters only")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--in-process", action="store_true", help="only the list's pages measured in this process (no server, no job)"
    )
    args = parser.parse_args(argv)
    import os

    setup_django(os.environ.get("DATABASE_URL", ""))
    scale = SCALES[args.scale]
    if args.events:
        scale = replace(scale, events=args.events)
    if args.heavy_events:
        scale = replace(scale, heavy_events=args.heavy_events)
    if args.in_process:
        from customers.models import Env

        load = os.getloadavg()[0]
        print(f"in-process, 1-minute load average {load:.2f}")
        prepare(Env.LIVE)
        rows = measure_in_process(Env.LIVE, dates(Env.LIVE))
        print(f"1-minute load average after: {os.getloadavg()[0]:.2f}")
        if args.json:
            args.json.write_text(json.dumps({"load_before": load, "filters": rows}, indent=2))
        return 0
    plan = Plan(seconds=args.seconds, warmup=1.0, min_page_requests=20, workers=args.workers)
    report = measure(os.environ["DATABASE_URL"], scale, plan, job_customers=args.job_customers)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
