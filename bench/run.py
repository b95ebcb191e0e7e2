"""The benchmark, end to end, in one command:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m bench.run

Loads the dataset (bench/generate.py; reused when already loaded), serves the app with gunicorn, and
measures in one run on this machine: the customer page (heavy and typical customer) beside a trivial
view, the customers list searched by email substring and by id prefix, the heavy customer's usage
chart (/v1/events.aggregate: from the daily rollup, and from the events), /v1/balances.track on one hot
balance and over many beside `pgbench -N`, every final balance checked exact, and the workers' peak
memory. Prints a table with the ratios and writes the figures as JSON (--json).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from pathlib import Path

from bench import floor as python_floor
from bench import loadgen, pgbench
from bench.generate import SCALES, Generator, Scale
from bench.server import BENCH_SECRET_KEY, FLOOR_APP, SERVERS, Server, process_cpu_seconds

# The floor of a dashboard page: a trivial view behind the same login, session and role check as every
# page (bench/urls.py). /healthz, public, skips them: reported beside it as the bare framework.
FLOOR = "trivial view, logged in (/bench/floor/)"
FLOOR_BARE = "trivial view, public (/healthz)"

TARGETS = {
    "page_ratio": 4.0,  # heavy customer page p50 ÷ trivial view p50 (logged in, as every page is), c=1 and 8
    "page_queries": 15,
    "search_p50_ms": 50.0,
    "typical_page_ratio": 2.5,  # typical customer page p50 ÷ the same floor
    "check_floor_ratio": 0.7,  # balances.check tps @8 ÷ the Python floor's check @8 (bench/floor.py), kept alive
    "track_floor_ratio": 0.7,  # balances.track tps @8 over many balances ÷ the floor's track @8, kept alive
    "track_ratio": 0.35,  # track tps at 8 over many balances ÷ pgbench -N tps at 8, connections kept alive
    "check_ratio": 0.35,  # check tps at 8 over many balances ÷ pgbench -S tps at 8, connections kept alive
    "worker_rss_mb": 150.0,
}


@dataclass(frozen=True)
class Plan:
    """How long and how hard to measure."""

    seconds: float = 10.0
    warmup: float = 2.0
    page_concurrency: tuple[int, ...] = (1, 8)
    track_concurrency: tuple[int, ...] = (1, 8, 32)
    min_page_requests: int = 40
    search_queries: int = 200
    pgbench_scale: int = 10
    workers: int = 0  # 0: one per core (granian, gthread); 2 × cores + 1 for gunicorn's sync workers
    server: str = "granian"  # bench/server.py, SERVERS
    threads: int = 4  # per worker (granian, gthread)

    @property
    def worker_count(self) -> int:
        cores = os.cpu_count() or 1
        return self.workers or (2 * cores + 1 if self.server == "sync" else cores)


PLANS = {
    "full": Plan(),
    "small": Plan(seconds=5.0, warmup=1.0),
    "tiny": Plan(
        seconds=0.6,
        warmup=0.0,
        track_concurrency=(1, 8),
        min_page_requests=3,
        search_queries=20,
        pgbench_scale=1,
        workers=2,
    ),
}


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["SECRET_KEY"] = BENCH_SECRET_KEY  # the server's key: sessions made here must be valid there
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autumn_admin.settings")
    import django

    django.setup()


# --- what the measurements need -------------------------------------------------------------------


def dashboard_session(env: str) -> tuple[object, str]:
    """A dashboard user and a session cookie for it, with the environment switch set to `env`."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User

    user, _ = User.objects.get_or_create(username="bench_ops", defaults={"email": "bench@example.com"})
    group = Group.objects.filter(name="Ops").first()
    if group is None:
        raise RuntimeError("The Ops role is missing (billing/migrations/0002_roles creates it): run migrate.")
    user.groups.add(group)
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]  # the one that checks passwords
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session["env"] = env
    session.create()
    return user, f"sessionid={session.session_key}"


def api_key(env: str) -> str:
    """A fresh secret key, made by the documented command."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_api_key", env=env, name="bench", stdout=out, stderr=io.StringIO())
    match = re.search(r"am_sk_\w+_[\w-]+", out.getvalue())
    if not match:
        raise RuntimeError(f"create_api_key printed no key: {out.getvalue()!r}")
    return match[0]


def count_queries(user, env: str, paths: dict[str, str]) -> dict[str, dict]:
    """SQL queries (and response size) of each page, rendered in-process: the second request counts."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    session = client.session
    session["env"] = env
    session.save()
    out = {}
    for name, path in paths.items():
        client.get(path)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        out[name] = {
            "path": path,
            "status": response.status_code,
            "queries": len(ctx.captured_queries),
            "bytes": len(response.content),
        }
    return out


def search_terms(env: str, count: int, seed: int = 11) -> dict[str, list[str]]:
    """Realistic searches, drawn from the data: the middle of an email (surname and number) and the
    first characters of an id, as people paste them; plus one broad term (a mail domain)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT max(id) FROM customers_customer")
        top = cur.fetchone()[0] or 1
        rng = random.Random(seed)
        ids = sorted(rng.sample(range(1, top + 1), min(top, count * 4)))
        cur.execute(
            "SELECT email, customer_id FROM customers_customer WHERE id = ANY(%s) AND env = %s "
            "AND deleted_at IS NULL AND email LIKE '%%.%%@%%' LIMIT %s",
            [ids, env, count],
        )
        rows = cur.fetchall()
    emails = [email.split("@")[0].split(".", 1)[1] for email, _ in rows]
    prefixes = [cid[:9] for _, cid in rows]
    return {"email": emails, "id": prefixes, "broad": ["gmail"]}


def track_balances(customer_ids: list[str], feature_id: str, env: str) -> dict[str, Decimal]:
    """Each customer's remaining balance of the feature (summed over its balances)."""
    from django.db.models import Sum

    from billing.models import Balance

    rows = (
        Balance.objects.filter(
            customer__env=env,
            customer__customer_id__in=customer_ids,
            customer__deleted_at__isnull=True,
            feature__feature_id=feature_id,
        )
        .values_list("customer__customer_id")
        .annotate(total=Sum("remaining"))
    )
    return dict(rows)


def hold_resets(customer_ids: list[str], feature_id: str, env: str) -> None:
    """Keep the tracked balances from resetting in the middle of a measurement (a reset is correct
    behaviour, but it would make the exact arithmetic of the check depend on the clock)."""
    from django.db.models import Q
    from django.utils import timezone

    from billing.models import Balance

    soon = timezone.now() + timedelta(days=1)
    (
        Balance.objects.filter(
            customer__env=env, customer__customer_id__in=customer_ids, feature__feature_id=feature_id
        )
        .filter(Q(next_reset_at__lt=soon))
        .update(next_reset_at=soon + timedelta(days=30))
    )


# The heavy customer's usage charts: day bins read the daily rollup, hour bins and a breakdown the events.
AGGREGATES = {
    "events.aggregate: heavy, 90d by day": {"range": "90d", "bin_size": "day"},
    "events.aggregate: heavy, 24h by hour": {"range": "24h", "bin_size": "hour"},
    "events.aggregate: heavy, 7d by region": {"range": "7d", "bin_size": "day", "group_by": "properties.region"},
}
AGGREGATE_FEATURES = 10


# The heavy customer's events, newest first (what a client paging through them asks): the first page, and
# one month of last spring (a range of older partitions when the events table is partitioned by month).
EVENT_LISTS = {
    "events.list: heavy, newest 100": {"limit": 100},
    "events.list: heavy, a month 6 months ago": {
        "limit": 100,
        "custom_range": {
            "start": int((datetime.now(UTC) - timedelta(days=180)).timestamp() * 1000),
            "end": int((datetime.now(UTC) - timedelta(days=150)).timestamp() * 1000),
        },
    },
}


def heavy_features(customer_id: str, env: str) -> list[str]:
    """The features of the heavy customer's balances: what its usage chart shows."""
    from billing.models import Balance

    ids = Balance.objects.filter(customer__customer_id=customer_id, customer__env=env).values_list(
        "feature__feature_id", flat=True
    )
    return sorted(set(ids))[:AGGREGATE_FEATURES]


def events_since(api_key_prefix: str, since: datetime) -> int:
    from billing.models import Event

    return Event.objects.filter(api_key__prefix=api_key_prefix, created_at__gte=since).count()


def database_backends() -> list[int]:
    """The PostgreSQL backends connected to the benchmark's database, this process's own excepted."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return [row[0] for row in cur.fetchall()]


class CpuMeter:
    """CPU time spent by the server's processes and by the database's backends during a measurement, per
    answer: what a request costs whatever else the machine runs (each process's own clock)."""

    def __init__(self, server: Server):
        self.server = server

    def __enter__(self) -> CpuMeter:
        self.backends = database_backends()
        self.server0 = self.server.cpu_seconds()
        self.db0 = {pid: process_cpu_seconds(pid) for pid in self.backends}
        return self

    def __exit__(self, *exc) -> None:
        self.server_seconds = self.server.cpu_seconds() - self.server0
        backends = set(self.backends) | set(database_backends())  # a pool may have opened more
        self.db_seconds = sum(process_cpu_seconds(pid) - self.db0.get(pid, 0.0) for pid in backends)

    def per_answer(self, answers: int) -> dict:
        n = max(answers, 1)
        return {
            "server_cpu_ms": round(self.server_seconds * 1000 / n, 3),
            "db_cpu_ms": round(self.db_seconds * 1000 / n, 3),
        }


def _row(result: loadgen.Result) -> dict:
    """A measurement's figures, with the CPU each answer cost the server and the database."""
    return result.summary() | getattr(result, "cpu", {})


def _mode(keep_alive: bool) -> str:
    return "keep-alive" if keep_alive else "new conn."


def _checked_answers(port: int, key: str, customer_ids: list[str], feature_id: str) -> dict[str, Decimal]:
    """What balances.check answers as each customer's remaining balance (as the SDKs read it)."""
    out = {}
    for cid in customer_ids:
        request = loadgen.post_json(
            "/v1/balances.check", {"customer_id": cid, "feature_id": feature_id}, bearer=key, target=cid
        )
        status, response = loadgen.send(port, request)
        if status == 200:
            body = json.loads(response.partition(b"\r\n\r\n")[2])
            out[cid] = Decimal(str(body["balance"]["remaining"]))
    return out


# --- the run --------------------------------------------------------------------------------------


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
                f"  {name:<28} c={concurrency:<3} {_mode(keep_alive):<10} {summary['throughput']:8.1f}/s  "
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
                http.append(_row(load(FLOOR_BARE, [loadgen.get("/healthz", cookie=cookie)], c, keep_alive)))
            for c in plan.page_concurrency:
                http.append(_row(load(FLOOR, [loadgen.get("/bench/floor/", cookie=cookie)], c, keep_alive)))
        for label, path in pages.items():
            for c in plan.page_concurrency:
                http.append(
                    _row(
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
                http.append(_row(load(f"search: {label}", requests, c, min_requests=plan.min_page_requests)))
        http.append(
            _row(
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
            http.append(_row(load(name, [request], 1, min_requests=plan.min_page_requests)))

        for name, body in EVENT_LISTS.items():
            request = loadgen.post_json(
                "/v1/events.list", {"customer_id": heavy["customer_id"]} | body, bearer=heavy_key
            )
            http.append(_row(load(name, [request], 1, min_requests=plan.min_page_requests)))

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
                summary = _row(result) | {
                    "exact": not wrong and events == result.ok,
                    "balances_checked": len(targets),
                    "balances_wrong": len(wrong),
                    "events_written": events,
                }
                tracks.append(summary)
                say(
                    f"  track: {label:<21} c={c:<3} {_mode(keep_alive):<10} {summary['throughput']:8.1f}/s  "
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
            answers = _checked_answers(server.port, key, targets[:50], track["feature_id"])  # 50 (or all) of them
            # Autumn reports what remains, never below zero.
            misread = {cid: (got, after.get(cid)) for cid, got in answers.items() if got != max(after.get(cid), 0)}
            moved = [cid for cid in targets if after.get(cid) != before.get(cid)]
            exact = (
                not moved
                and not misread
                and len(answers) == min(50, len(targets))
                and events_since(key_prefix, since) == 0
            )
            checks.append(_row(result) | {"exact": exact, "balances_checked": len(targets)})
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


def measure_python_floor(database_url: str, plan: Plan, key: str, track: dict, say) -> list[dict]:
    """The Python floor (bench/floor.py) under the same server and settings, on its own tables holding the
    same key, customers and feature: check and track over the same customers, kept alive, at each
    concurrency of the plan. Its tracks are checked exact as the project's are."""
    targets = track["many"]
    python_floor.load(database_url, key, track["env"], targets, track["feature_id"])
    runs = []
    with Server(database_url, workers=plan.worker_count, kind=plan.server, threads=plan.threads, app=FLOOR_APP) as srv:
        for name, path, body in (
            ("floor: check", "/v1/balances.check", {"required_balance": 1}),
            ("floor: track", "/v1/balances.track", {"value": 1}),
        ):
            requests = [
                loadgen.post_json(
                    path, {"customer_id": cid, "feature_id": track["feature_id"], **body}, bearer=key, target=cid
                )
                for cid in targets
            ]
            random.Random(7).shuffle(requests)
            for c in plan.track_concurrency:
                before = python_floor.balances(database_url, track["feature_id"])
                with CpuMeter(srv) as cpu:
                    result = loadgen.run_load(
                        srv.port, name, requests, concurrency=c, seconds=plan.seconds, keep_alive=True
                    )
                result.cpu = cpu.per_answer(result.requests)
                after = python_floor.balances(database_url, track["feature_id"])
                moved = {cid: before[cid] - after[cid] for cid in targets if after[cid] != before[cid]}
                expected = {cid: n for cid, n in result.ok_by_target.items() if n} if name.endswith("track") else {}
                row = _row(result) | {"exact": moved == expected}
                runs.append(row)
                say(
                    f"  {name:<28} c={c:<3} keep-alive {row['throughput']:8.1f}/s  p50 {row['p50_ms']:7.2f}  "
                    f"p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}  exact {'yes' if row['exact'] else 'NO'}  "
                    f"cpu/answer: server {row['server_cpu_ms']} ms, database {row['db_cpu_ms']} ms"
                )
    return runs


def machine() -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        version = cur.fetchone()[0].split(" on ")[0]
        settings = {}
        for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections", "work_mem"):
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": mem,
        "python": platform.python_version(),
        "postgresql": version,
        "postgresql_settings": settings,
        "load_average_at_start": os.getloadavg(),
    }


def _find(rows: list[dict], name: str, concurrency: int, keep_alive: bool = True) -> dict | None:
    return next(
        (
            r
            for r in rows
            if r["name"] == name and r["concurrency"] == concurrency and r.get("keep_alive", keep_alive) == keep_alive
        ),
        None,
    )


def ratios(report: dict) -> dict:
    """Pages ÷ the floors (connections kept alive, as a browser's); track ÷ pgbench -N and check ÷ pgbench
    -S, in both connection modes."""
    out = {}
    for c in report["plan"]["page_concurrency"]:
        for floor_name, short in ((FLOOR, "trivial"), (FLOOR_BARE, "bare trivial")):
            floor = _find(report["http"], floor_name, c)
            for label in ("heavy", "typical"):
                page = _find(report["http"], f"customer page: {label}", c)
                if floor and page and floor["p50_ms"]:
                    out[f"page {label} p50 / {short} p50 @{c}"] = round(page["p50_ms"] / floor["p50_ms"], 2)
        floor = _find(report["http"], FLOOR, c)
        bare = _find(report["http"], FLOOR_BARE, c)
        if floor and bare:
            out[f"logged-in floor p50 - /healthz p50 @{c} (ms)"] = round(floor["p50_ms"] - bare["p50_ms"], 2)
    for c in sorted({*report["plan"]["track_concurrency"], 8}):
        for keep_alive in (True, False):
            suffix = "" if keep_alive else " (new connection each)"
            for rows, name, pg in (
                (report["track"], "track: many balances", "pgbench -N"),
                (report["track"], "track: hot balance", "pgbench -N"),
                (report.get("check", []), "check: many balances", "pgbench -S"),
            ):
                row, floor = _find(rows, name, c, keep_alive), _find(report["pgbench"], pg, c)
                if row and floor and floor["tps"]:
                    out[f"{name.replace(':', '')} / {pg} @{c}{suffix}"] = round(row["throughput"] / floor["tps"], 3)
    for c in report["plan"]["track_concurrency"]:
        for name, floor_name in (("check: many balances", "floor: check"), ("track: many balances", "floor: track")):
            row = _find(_rows_of(report, name), name, c)
            floor = _find(report.get("python_floor", []), floor_name, c)
            if row and floor and floor["throughput"]:
                out[f"{name.split(':')[0]} / Python floor @{c}"] = round(row["throughput"] / floor["throughput"], 3)
    hot_floor = next((r for r in report["pgbench"] if r["name"] == "pgbench hot row"), None)
    hot = _find(report["track"], "track: hot balance", hot_floor["concurrency"]) if hot_floor else None
    if hot and hot_floor["tps"]:
        out[f"track hot balance / pgbench hot row @{hot_floor['concurrency']}"] = round(
            hot["throughput"] / hot_floor["tps"], 3
        )
    return out


def _rows_of(report: dict, name: str) -> list[dict]:
    return report.get("check", []) if name.startswith("check") else report["track"]


def verdict(report: dict) -> dict:
    """Each target: the measured figure and whether it is met."""
    r, v = report["ratios"], {}
    for c in report["plan"]["page_concurrency"]:
        v[f"heavy page p50 ≤ 4× logged-in trivial view p50 (c={c})"] = _check(
            r.get(f"page heavy p50 / trivial p50 @{c}"), TARGETS["page_ratio"], below=True
        )
        v[f"typical page p50 ≤ 2.5× logged-in trivial view p50 (c={c})"] = _check(
            r.get(f"page typical p50 / trivial p50 @{c}"), TARGETS["typical_page_ratio"], below=True
        )
    v["heavy page ≤ 15 queries"] = _check(
        report["queries"].get("heavy", {}).get("queries"), TARGETS["page_queries"], below=True
    )
    for label in ("email", "id"):
        row = _find(report["http"], f"search: {label}", 1)
        v[f"search {label} p50 ≤ 50 ms (c=1)"] = _check(row and row["p50_ms"], TARGETS["search_p50_ms"], below=True)
    v["check @8 ≥ 0.7× the Python floor's check @8 (keep-alive)"] = _check(
        r.get("check / Python floor @8"), TARGETS["check_floor_ratio"], below=False
    )
    v["track many @8 ≥ 0.7× the Python floor's track @8 (keep-alive)"] = _check(
        r.get("track / Python floor @8"), TARGETS["track_floor_ratio"], below=False
    )
    v["track many @8 ≥ 0.35× pgbench -N @8 (keep-alive)"] = _check(
        r.get("track many balances / pgbench -N @8"), TARGETS["track_ratio"], below=False
    )
    v["check many @8 ≥ 0.35× pgbench -S @8 (keep-alive)"] = _check(
        r.get("check many balances / pgbench -S @8"), TARGETS["check_ratio"], below=False
    )
    hot = [t for t in report["track"] if t["name"] == "track: hot balance"]
    top = max(hot, key=lambda t: t["concurrency"]) if hot else None
    v[f"track exact on one hot balance (c={top['concurrency'] if top else '?'})"] = {
        "value": bool(top and top["exact"] and top["errors"] == 0),
        "met": bool(top and top["exact"] and top["errors"] == 0),
    }
    exact = all(t["exact"] for t in report["track"] + report.get("check", []))
    v["every balance exact (track and check)"] = {"value": exact, "met": exact}
    v["worker peak RSS ≤ 150 MB"] = _check(report["memory"]["peak_rss_mb_max"], TARGETS["worker_rss_mb"], below=True)
    return v


def _check(value, target, *, below: bool) -> dict:
    if value is None:
        return {"value": None, "target": target, "met": False}
    return {"value": value, "target": target, "met": value <= target if below else value >= target}


def print_report(report: dict, out=sys.stdout) -> None:
    def say(text=""):
        print(text, file=out)

    m = report["machine"]
    say()
    say(f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, {m['postgresql']}, Python {m['python']}")
    counts = report["dataset"]["counts"]
    say(
        "Dataset: "
        + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in counts.items())
        + f"; heavy customer {report['dataset']['heavy']['events']:,} events"
    )
    say()
    plan = report["plan"]
    say(f"Server: {plan['server']}, {plan['workers']} workers × {plan['threads']} threads")
    say()
    say(
        "| measurement | c | connection | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms | db CPU ms "
        "| load |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in report["http"] + report["track"] + report.get("check", []) + report.get("python_floor", []):
        say(
            f"| {row['name']} | {row['concurrency']} | {_mode(row.get('keep_alive', False))} | "
            f"{row['throughput']:,.0f} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['errors']} | "
            f"{row.get('server_cpu_ms', '')} | {row.get('db_cpu_ms', '')} | {row['load_average']} |"
        )
    for row in report["pgbench"]:
        say(
            f"| {row['name']} | {row['concurrency']} | | {row['tps']:,.0f} | {row['p50_ms']} | {row['p95_ms']} | "
            f"{row['p99_ms']} | {row['failed']} | | | {row['load_average']} |"
        )
    say()
    say("Queries per page: " + ", ".join(f"{k} {v['queries']}" for k, v in report["queries"].items()))
    say(f"Worker peak RSS: {report['memory']['peak_rss_mb_max']} MB (each: {report['memory']['peak_rss_mb_each']})")
    say()
    say("Ratios:")
    for name, value in report["ratios"].items():
        say(f"  {name:<52} {value}")
    say()
    say("Targets:")
    for name, check in report["verdict"].items():
        say(f"  {'met   ' if check['met'] else 'MISSED'} {name}: {check['value']}")


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
