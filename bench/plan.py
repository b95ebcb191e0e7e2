"""What a benchmark run measures against and how long: the floors' names, the targets the verdict checks,
the plans (how long and how hard, by scale), and the Django it runs in."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.server import BENCH_SECRET_KEY

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
