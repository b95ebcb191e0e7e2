"""The hot calls' cost per call, measured in-process: the project's WSGI application (autumn_admin/wsgi.py,
the lean path) and the Python floor's (bench/floor.py) each called directly N times with a prepared
environ, on a small dataset of their own, with production settings:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hot python -m bench.hot_profile [--calls 2000] [--profile check]

For each of balances.check and balances.track it prints the CPU this process spent per call (its own clock,
so it holds on a busy machine), the CPU PostgreSQL's backends spent per call, and the floor's figures
beside them, with the ratio floor ÷ project: what the throughput ratio at c = 8 tends to when both are
bound by the machine's CPU (bench/run.py measures the real one). Each figure is the least of --rounds
(whatever else runs on the machine only adds); `--callgrind`, run under valgrind, counts instructions.
`--profile NAME` (check or track) also prints where the project's calls spend their time (cProfile)."""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

ENV = "sandbox"
FEATURE = "hp_calls"
PRODUCT = "hp_scale"
CUSTOMERS = [f"hp_{n:03}" for n in range(50)]
CALLS = {
    "check": ("/v1/balances.check", {"required_balance": 1}),
    "track": ("/v1/balances.track", {"value": 1}),
}


def _setup(database_url: str) -> None:
    from bench.server import server_env

    os.environ.update(server_env(database_url, str(Path(__file__).parent / "data" / "static")))
    os.environ["DJANGO_SETTINGS_MODULE"] = "autumn_admin.settings"
    import django

    django.setup()


def _dataset() -> str:
    """The feature, a plan with a usage price on it, the customers on the plan, and a fresh key (returned)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.core.management import call_command
    from django.utils import timezone

    from billing.models import Balance, Feature, Price, Product, ProductItem
    from billing.services.products import product_attach
    from customers.audit import SYSTEM
    from customers.models import Customer
    from customers.services.api_keys import api_key_create
    from customers.services.customers import customer_create

    call_command("migrate", verbosity=0)
    if not Feature.objects.filter(feature_id=FEATURE).exists():
        feature = Feature.objects.create(feature_id=FEATURE, name="Calls", type="metered", usage_type="single_use")
        product = Product.objects.create(product_id=PRODUCT, name="Scale")
        Price.objects.create(product=product, type="fixed", amount=25000, currency="usd", interval="month")
        Price.objects.create(
            product=product,
            type="usage",
            feature=feature,
            amount=100,
            billing_units=1000,
            currency="usd",
            interval="month",
        )
        ProductItem.objects.create(
            product=product, feature=feature, included=Decimal(10**9), interval="month", overage_allowed=True
        )
    product = Product.objects.get(product_id=PRODUCT)
    for cid in CUSTOMERS:
        if not Customer.objects.alive().filter(env=ENV, customer_id=cid).exists():
            customer = customer_create(env=ENV, customer_id=cid, actor=SYSTEM, attach_defaults=False)
            product_attach(customer=customer, product=product, actor=SYSTEM, now=timezone.now())
    # No reset due during the measurement (a reset is correct, but not what is measured).
    Balance.objects.filter(customer__env=ENV, feature__feature_id=FEATURE).update(
        next_reset_at=timezone.now() + timedelta(days=30)
    )
    return api_key_create(env=ENV, name="hot profile", actor=SYSTEM)[1]


def _environ(path: str, body: bytes, key: str) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_USER_AGENT": "hot-profile",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def _requests(path: str, extra: dict, key: str) -> list[tuple[dict, bytes]]:
    out = []
    for cid in CUSTOMERS:
        body = json.dumps({"customer_id": cid, "feature_id": FEATURE, **extra}).encode()
        out.append((_environ(path, body, key), body))
    return out


def _call(app, requests: list[tuple[dict, bytes]], n: int) -> None:
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    for i in range(n):
        environ, body = requests[i % len(requests)]
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        b"".join(app(environ, start_response))
        if statuses[-1][:3] != "200":
            raise RuntimeError(f"{environ['PATH_INFO']} answered {statuses[-1]}")


def _callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


def _backend_seconds(database_url: str) -> float:
    """CPU seconds PostgreSQL's backends on the database have spent (this meter's own connection excepted)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _measure(app, requests, n: int, database_url: str) -> dict:
    """µs of this process's CPU, of the database's, and of the wall clock per call, over `n` calls."""
    db0, cpu0, wall0 = _backend_seconds(database_url), time.process_time(), time.perf_counter()
    _call(app, requests, n)
    cpu, wall, db = time.process_time() - cpu0, time.perf_counter() - wall0, _backend_seconds(database_url) - db0
    return {"cpu_us": cpu * 1e6 / n, "db_us": db * 1e6 / n, "wall_us": wall * 1e6 / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is their least (default 3)")
    parser.add_argument("--profile", choices=sorted(CALLS), help="also profile the project's calls of this name")
    parser.add_argument(
        "--callgrind", action="store_true", help="under valgrind's callgrind: count each kind's instructions"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        parser.error("set DATABASE_URL to a PostgreSQL database of its own")
    _setup(database_url)
    key = _dataset()

    from autumn_admin.wsgi import application
    from bench import floor

    floor.load(database_url, key, ENV, CUSTOMERS, FEATURE)
    os.environ["DATABASE_URL"] = database_url
    apps = {"project": application, "floor": floor.application}
    requests = {name: _requests(path, extra, key) for name, (path, extra) in CALLS.items()}
    for name in CALLS:
        for app in apps.values():
            _call(app, requests[name], min(args.calls, 300))  # warm: connections, prepared statements, caches
    # Rounds interleaved, project then floor, so both see the same machine; each figure the least.
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for name in CALLS:
            for label, app in apps.items():
                runs.setdefault((name, label), []).append(_measure(app, requests[name], args.calls, database_url))
    figures: dict[str, dict[str, dict]] = {}
    for (name, label), rounds in runs.items():
        figures.setdefault(name, {})[label] = {k: min(r[k] for r in rounds) for k in rounds[0]}
    print(f"{'call':<8} {'':<8} {'CPU µs':>8} {'db µs':>8} {'wall µs':>8}   floor ÷ project: CPU, CPU+db")
    for name, by in figures.items():
        p, f = by["project"], by["floor"]
        by["ratio_cpu"] = f["cpu_us"] / p["cpu_us"]
        by["ratio_cpu_db"] = (f["cpu_us"] + f["db_us"]) / (p["cpu_us"] + p["db_us"])
        for label in ("project", "floor"):
            r = by[label]
            print(f"{name:<8} {label:<8} {r['cpu_us']:8.0f} {r['db_us']:8.0f} {r['wall_us']:8.0f}")
        print(f"{name:<8} {'ratio':<8} {'':>26}   {by['ratio_cpu']:.2f}, {by['ratio_cpu_db']:.2f}")
    if args.callgrind:
        # Under `valgrind --tool=callgrind --instr-atstart=no`: count only the measured calls, each kind in
        # a dump of its own (callgrind_annotate prints each dump's instructions).
        for name in CALLS:
            for label, app in apps.items():
                _callgrind("-z")
                _callgrind("-i", "on")
                _call(app, requests[name], args.calls)
                _callgrind("-i", "off")
                _callgrind("-d", f"{name}-{label}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if args.profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting on the database
        profiler.runcall(_call, application, requests[args.profile], args.calls)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
