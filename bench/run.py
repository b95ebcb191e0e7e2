"""The benchmark, end to end, in one command:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m bench.run

Loads the dataset (bench/generate.py; reused when already loaded), serves the app with gunicorn, and
measures in one run on this machine: the customer page (heavy and typical customer) beside a trivial
view, the customers list searched by email substring and by id prefix, the heavy customer's usage
chart (/v1/events.aggregate: from the daily rollup, and from the events), /v1/balances.track on one hot
balance and over many beside `pgbench -N`, every final balance checked exact, and the workers' peak
memory. Prints a table with the ratios and writes the figures as JSON (--json).

The run's targets and plans are in bench/plan.py, what the measurements need in bench/measuring.py, the
Python floor's measurement in bench/measure_floor.py, and the ratios, verdict and table in bench/report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bench import loadgen, pgbench
from bench.dataset import SCALES, Scale
from bench.generate import Generator
from bench.measure_floor import measure_python_floor
from bench.measuring import (
    AGGREGATES,
    EVENT_LISTS,
    CpuMeter,
    api_key,
    checked_answers,
    connection_mode,
    count_queries,
    dashboard_session,
    events_since,
    heavy_features,
    hold_resets,
    result_row,
    search_terms,
    track_balances,
)
from bench.plan import FLOOR, FLOOR_BARE, PLANS, Plan, setup_django
from bench.report import machine, print_report, ratios, verdict
from bench.server import SERVERS, Server


def measure(database_url: str, scale: Scale, plan: Plan, *, out=sys.stdout) -> dict:
    """Everything, in order: dataset, query counts, HTTP latencies and throughput, pgbench, memory."""
    from django.core.management import call_command

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    started = datetime.now(UTC)
    call_command("migrate", verbosity=0)
    manifest = Generator(scale, out=out).run()
    heavy, typical, track = manifest["heavy"], manifest["typical"], manifest["track"]
    user, cookie = dashboard_session(heavy["env"])
    key = api_key(track["env"])
    heavy_key = api_key(heavy["env"])
    key_prefix = key[:15]
    pages = {"heavy": f"/customers/{heavy['customer_id']}/", "typical": f"/customers/{typical['customer_id']}/"}
    terms = search_terms(heavy["env"], plan.search_queries)
    queries = count_queries(
        user,
        heavy["env"],
        {
            **pages,
            "search email": "/customers/?" + loadgen.urlencode({"q": terms["email"][0]}),
            "search id": "/customers/?" + loadgen.urlencode({"q": terms["id"][0]}),
        },
    )
    for name, q in queries.items():
        say(f"  {name:<14} {q['status']} {q['queries']:>3} queries {q['bytes'] / 1024:8.1f} KiB  {q['path']}")

    http: list[dict] = []
    tracks: list[dict] = []
    checks: list[dict] = []
    with Server(database_url, workers=plan.worker_count, kind=plan.server, threads=plan.threads) as server:
        say(f"{plan.server}: {plan.worker_count} workers × {plan.threads} threads on 127.0.0.1:{server.port}")

        def load(
            name: str, requests: list[loadgen.Request], concurrency: int, keep_alive: bool = True, **kw
        ) -> loadgen.Result:
            if plan.warmup > 0:
                loadgen.run_load(
                    server.port, name, requests, concurrency=concurrency, seconds=plan.warmup, keep_alive=keep_alive
                )
            with CpuMeter(server) as cpu:
                result = loadgen.run_load(
                    server.port,
                    name,
                    requests,
                    concurrency=concurrency,
                    seconds=plan.seconds,
                    keep_alive=keep_alive,
                    **kw,
                )
            result.cpu = cpu.per_answer(result.requests)
            summary = result.summary() | result.cpu
            say(
                f"  {name:<28} c={concurrency:<3} {connection_mode(keep_alive):<10} {summary['throughput']:8.1f}/s  "
                f"p50 {summary['p50_ms']:7.2f}  p95 {summary['p95_ms']:7.2f}  p99 {summary['p99_ms']:7.2f} ms  "
                f"errors {summary['errors']}  client cpu {summary['client_cpu_share']:.0%}  "
                f"cpu/answer: server {summary['server_cpu_ms']} ms, database {summary['db_cpu_ms']} ms"
            )
            if result.failures:
                say(f"    first failure: {result.failures[0][:200]!r}")
            return result

        # Pages, as a browser loads them (connections kept alive); the floors also on fresh connections.
        for keep_alive in (True, False):
            for c in plan.page_concurrency:
                http.append(result_row(load(FLOOR_BARE, [loadgen.get("/healthz", cookie=cookie)], c, keep_alive)))
            for c in plan.page_concurrency:
                http.append(result_row(load(FLOOR, [loadgen.get("/bench/floor/", cookie=cookie)], c, keep_alive)))
        for label, path in pages.items():
            for c in plan.page_concurrency:
                http.append(
                    result_row(
                        load(
                            f"customer page: {label}",
                            [loadgen.get(path, cookie=cookie)],
                            c,
                            min_requests=plan.min_page_requests,
                        )
                    )
                )
        for label in ("email", "id", "broad"):
            requests = [loadgen.get("/customers/", cookie=cookie, query={"q": term}) for term in terms[label]]
            for c in plan.page_concurrency if label != "broad" else (1,):
                http.append(result_row(load(f"search: {label}", requests, c, min_requests=plan.min_page_requests)))
        http.append(
            result_row(
                load(
                    "customers list, no search",
                    [loadgen.get("/customers/", cookie=cookie)],
                    1,
                    min_requests=plan.min_page_requests,
                )
            )
        )
        chart = {"customer_id": heavy["customer_id"], "feature_id": heavy_features(heavy["customer_id"], heavy["env"])}
        for name, body in AGGREGATES.items():
            request = loadgen.post_json("/v1/events.aggregate", chart | body, bearer=heavy_key)
            http.append(result_row(load(name, [request], 1, min_requests=plan.min_page_requests)))

        for name, body in EVENT_LISTS.items():
            request = loadgen.post_json(
                "/v1/events.list", {"customer_id": heavy["customer_id"]} | body, bearer=heavy_key
            )
            http.append(result_row(load(name, [request], 1, min_requests=plan.min_page_requests)))

        # Track and check, as the SDKs call (connections kept alive), and on a fresh connection each at 8.
        hold_resets(track["many"], track["feature_id"], track["env"])
        runs = [(c, True) for c in plan.track_concurrency] + [(8, False)]
        for label, targets in (("hot balance", [track["hot"]]), ("many balances", track["many"])):
            requests = [
                loadgen.post_json(
                    "/v1/balances.track",
                    {"customer_id": cid, "feature_id": track["feature_id"], "value": 1},
                    bearer=key,
                    target=cid,
                )
                for cid in targets
            ]
            random.Random(3).shuffle(requests)
            for c, keep_alive in runs if label == "many balances" else [(c, True) for c in plan.track_concurrency]:
                before = track_balances(targets, track["feature_id"], track["env"])
                since = datetime.now(UTC)
                with CpuMeter(server) as cpu:
                    result = loadgen.run_load(
                        server.port,
                        f"track: {label}",
                        requests,
                        concurrency=c,
                        seconds=plan.seconds,
                        keep_alive=keep_alive,
                    )  # no warm-up: every call counts in the check
                result.cpu = cpu.per_answer(result.requests)
                after = track_balances(targets, track["feature_id"], track["env"])
                wrong = [
                    cid for cid in targets if after.get(cid) != before.get(cid, Decimal(0)) - result.ok_by_target[cid]
                ]
                events = events_since(key_prefix, since)
                summary = result_row(result) | {
                    "exact": not wrong and events == result.ok,
                    "balances_checked": len(targets),
                    "balances_wrong": len(wrong),
                    "events_written": events,
                }
                tracks.append(summary)
                say(
                    f"  track: {label:<21} c={c:<3} {connection_mode(keep_alive):<10} {summary['throughput']:8.1f}/s  "
                    f"p50 {summary['p50_ms']:7.2f}  p99 {summary['p99_ms']:7.2f} ms  errors {summary['errors']}  "
                    f"exact {'yes' if summary['exact'] else 'NO'} ({len(targets)} balances, {events} events)  "
                    f"client cpu {summary['client_cpu_share']:.0%}  cpu/answer: server {summary['server_cpu_ms']} ms, "
                    f"database {summary['db_cpu_ms']} ms"
                )
                if result.failures:
                    say(f"    first failure: {result.failures[0][:200]!r}")

        # Check over the same balances: nothing may move, and each answer is what the database holds.
        targets = track["many"]
        requests = [
            loadgen.post_json(
                "/v1/balances.check",
                {"customer_id": cid, "feature_id": track["feature_id"], "required_balance": 1},
                bearer=key,
                target=cid,
            )
            for cid in targets
        ]
        random.Random(5).shuffle(requests)
        for c, keep_alive in runs:
            before = track_balances(targets, track["feature_id"], track["env"])
            since = datetime.now(UTC)
            result = load("check: many balances", requests, c, keep_alive)
            after = track_balances(targets, track["feature_id"], track["env"])
            answers = checked_answers(server.port, key, targets[:50], track["feature_id"])  # 50 (or all) of them
            # Autumn reports what remains, never below zero.
            misread = {cid: (got, after.get(cid)) for cid, got in answers.items() if got != max(after.get(cid), 0)}
            moved = [cid for cid in targets if after.get(cid) != before.get(cid)]
            exact = (
                not moved
                and not misread
                and len(answers) == min(50, len(targets))
                and events_since(key_prefix, since) == 0
            )
            checks.append(result_row(result) | {"exact": exact, "balances_checked": len(targets)})
            say(
                f"    exact {'yes' if exact else 'NO'} ({len(moved)} balances moved, {len(answers)} answers read back, "
                f"{len(misread)} differ from the database{': ' + str(list(misread.items())[:2]) if misread else ''})"
            )
        memory = server.worker_memory()
        say(f"  workers' peak RSS: {memory['peak_rss_mb_each']} MB")

    floor_runs = measure_python_floor(database_url, plan, key, track, say)

    pgbench.initialise(database_url, plan.pgbench_scale)
    floors = []
    for select_only in (False, True):
        for c in plan.track_concurrency:
            floors.append(pgbench.run(database_url, clients=c, seconds=plan.seconds, select_only=select_only))
            say(
                f"  {floors[-1]['name']:<28} c={c:<3} {floors[-1]['tps']:8.1f}/s  p50 {floors[-1]['p50_ms']:7.2f}  "
                f"p99 {floors[-1]['p99_ms']:7.2f} ms"
            )
    hot_c = max(plan.track_concurrency)
    floors.append(pgbench.run(database_url, clients=hot_c, seconds=plan.seconds, hot=True))
    say(f"  pgbench hot row {'':<13} c={hot_c:<3} {floors[-1]['tps']:8.1f}/s  p99 {floors[-1]['p99_ms']:7.2f} ms")

    report = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": asdict(plan) | {"workers": plan.worker_count},
        "dataset": manifest,
        "queries": queries,
        "search_terms": {k: v[:5] for k, v in terms.items()},
        "http": http,
        "track": tracks,
        "check": checks,
        "pgbench": floors,
        "python_floor": floor_runs,
        "memory": memory,
    }
    report["ratios"] = ratios(report)
    report["verdict"] = verdict(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, default="full", help="dataset size and measurement length")
    parser.add_argument("--seconds", type=float, help="length of each measurement")
    parser.add_argument("--workers", type=int, help="server worker processes (default: the plan's)")
    parser.add_argument("--server", choices=SERVERS, help="the server (default granian, the production one)")
    parser.add_argument("--threads", type=int, help="threads per worker (granian, gthread)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        parser.error(
            "set DATABASE_URL to a PostgreSQL database of its own, e.g. "
            "postgres://postgres@127.0.0.1:5432/bench (createdb -h 127.0.0.1 -U postgres bench)"
        )
    plan = PLANS[args.scale]
    if args.seconds:
        plan = replace(plan, seconds=args.seconds)
    if args.workers:
        plan = replace(plan, workers=args.workers)
    if args.server:
        plan = replace(plan, server=args.server)
    if args.threads:
        plan = replace(plan, threads=args.threads)
    setup_django(database_url)
    t0 = time.perf_counter()
    report = measure(database_url, SCALES[args.scale], plan)
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nFigures written to {args.json}")
    return 0 if all(check["met"] for check in report["verdict"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
