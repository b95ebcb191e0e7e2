"""The benchmark at toy scale, so it cannot rot: the generator loads the test database with COPY, the
app is served by gunicorn, every measurement runs, and every tracked balance ends exact."""

import io

import pytest
from django.core.management import get_commands
from django.db import connection

from bench import generate, run
from bench.server import BENCH_SECRET_KEY
from tests.conftest import database_url, ensure_roles

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

SCALE = generate.Scale(
    customers=400, events=6_000, heavy_events=2_000, heavy_invoices=40, heavy_balances=50, track_customers=20
)
PLAN = run.Plan(
    seconds=0.3,
    warmup=0.0,
    page_concurrency=(1, 4),
    track_concurrency=(1, 8),
    min_page_requests=2,
    search_queries=10,
    pgbench_scale=1,
    workers=2,
)


@pytest.fixture
def bench_settings(settings):
    ensure_roles()  # the benchmark logs in as an Ops user; transactional tests flush the role groups
    settings.SECRET_KEY = BENCH_SECRET_KEY  # the served app's key: the session made here must log in there
    return settings


def test_generator_loads_the_shape_it_promises(bench_settings):
    from billing.models import Balance, Event, Invoice
    from customers.models import Customer

    manifest = generate.Generator(SCALE, out=io.StringIO()).run(reuse=False)

    assert Customer.objects.count() == 400
    assert set(Customer.objects.values_list("env", flat=True)) == {"sandbox", "live"}
    assert Event.objects.count() == 6_000
    heavy = Customer.objects.get(customer_id="org_megacorp", env="live")
    assert Balance.objects.filter(customer=heavy).count() == 50
    assert Invoice.objects.filter(customer=heavy).count() == 40
    assert Event.objects.filter(customer=heavy).count() == 2_000
    assert manifest["counts"]["events"] == 6_000
    # Every row is consistent with its foreign keys although the load ran without FK triggers.
    assert not Event.objects.exclude(customer__in=Customer.objects.all()).exists()
    assert not Balance.objects.exclude(customer__in=Customer.objects.all()).exists()
    # The secondary indexes dropped for the load are back.
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'billing_event'")
        names = {row[0] for row in cur.fetchall()}
    assert {"event_customer_time", "event_cus_feat_time"} <= names
    # ...valid, and on every partition of the events (a partitioned table's index rebuilt "ON ONLY" the
    # parent is invalid and on none of them: every page reading events would scan them all).
    with connection.cursor() as cur:
        cur.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
        assert cur.fetchall() == []
        cur.execute(
            "SELECT count(*) FROM pg_inherits p JOIN pg_indexes i ON i.tablename = p.inhrelid::regclass::text"
            " WHERE p.inhparent = 'billing_event'::regclass AND i.indexdef LIKE '%%(customer_id, \"timestamp\" DESC%%'"
        )
        partitions_with_index = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'billing_event'::regclass")
        assert partitions_with_index == cur.fetchone()[0]
    # A second run with the same parameters reuses the data instead of loading it again.
    out = io.StringIO()
    generate.Generator(SCALE, out=out).run()
    assert "reusing it" in out.getvalue()


@pytest.mark.skipif(
    "create_api_key" not in get_commands(),
    reason="the track measurements need the REST API and its create_api_key command",
)
def test_benchmark_measures_everything_and_every_balance_ends_exact(bench_settings):
    out = io.StringIO()
    report = run.measure(database_url(), SCALE, PLAN, out=out)
    log = out.getvalue()

    assert report["plan"]["server"] == "granian"  # the README's production server
    names = {(row["name"], row["concurrency"], row["keep_alive"]) for row in report["http"]}
    for c in PLAN.page_concurrency:
        for name in (
            run.FLOOR,
            run.FLOOR_BARE,
            "customer page: heavy",
            "customer page: typical",
            "search: email",
            "search: id",
        ):
            assert (name, c, True) in names, log  # as a browser loads them: the connection kept alive
        for name in (run.FLOOR, run.FLOOR_BARE):
            assert (name, c, False) in names, log  # and on a fresh connection each
    for row in report["http"]:
        assert row["requests"] > 0 and row["errors"] == 0, (row, log)
        assert row["p50_ms"] > 0
    assert {name for name, _, _ in names} >= set(run.AGGREGATES), log
    assert report["queries"]["heavy"]["status"] == 200
    assert report["queries"]["heavy"]["queries"] > 0

    # Track: hot and many balances at each concurrency with connections kept alive, many also on fresh ones.
    modes = [(row["name"], row["concurrency"], row["keep_alive"]) for row in report["track"]]
    assert len(modes) == 2 * len(PLAN.track_concurrency) + 1
    assert ("track: many balances", 8, False) in modes and ("track: many balances", 8, True) in modes
    for row in report["track"]:
        assert row["errors"] == 0 and row["requests"] > 0, (row, log)
        assert row["exact"], (row, log)
        assert row["events_written"] == row["requests"]
    # Check: the same balances, in both modes; nothing moved and every answer read back matches the database.
    modes = [(row["concurrency"], row["keep_alive"]) for row in report["check"]]
    assert modes == [(c, True) for c in PLAN.track_concurrency] + [(8, False)]
    for row in report["check"]:
        assert row["errors"] == 0 and row["requests"] > 0, (row, log)
        assert row["exact"], (row, log)

    assert [f["name"] for f in report["pgbench"]] == [
        "pgbench -N",
        "pgbench -N",
        "pgbench -S",
        "pgbench -S",
        "pgbench hot row",
    ]
    assert all(f["tps"] > 0 for f in report["pgbench"])
    assert 20 < report["memory"]["peak_rss_mb_max"] < 1000
    assert "page heavy p50 / trivial p50 @1" in report["ratios"]
    assert "track many balances / pgbench -N @8" in report["ratios"]
    assert "track many balances / pgbench -N @8 (new connection each)" in report["ratios"]
    assert "check many balances / pgbench -S @8" in report["ratios"]
    # The Python floor (bench/floor.py), in the same run: check and track at each concurrency, its own
    # tracks exact, and each hot call reported as a ratio of its floor.
    floors = [(row["name"], row["concurrency"]) for row in report["python_floor"]]
    assert floors == [("floor: check", c) for c in PLAN.track_concurrency] + [
        ("floor: track", c) for c in PLAN.track_concurrency
    ]
    for row in report["python_floor"]:
        assert row["errors"] == 0 and row["requests"] > 0 and row["exact"], (row, log)
    assert "check / Python floor @8" in report["ratios"] and "track / Python floor @8" in report["ratios"]
    assert "check @8 ≥ 0.7× the Python floor's check @8 (keep-alive)" in report["verdict"]

    printed = io.StringIO()
    run.print_report(report, out=printed)
    assert "Targets:" in printed.getvalue()


def test_bulk_benchmark_measures_every_filter_and_a_job_beside_idle_pages(bench_settings):
    from bench import bulk

    out = io.StringIO()
    report = bulk.measure(database_url(), SCALE, PLAN, job_customers=50, out=out)
    log = out.getvalue()

    assert [row["filter"] for row in report["filters"]] == [*bulk.FILTERS, *bulk.SORTS], log
    for row in report["filters"]:
        assert row["requests"] > 0 and row["errors"] == 0 and row["p50_ms"] > 0, (row, log)
    job = report["job"]
    assert job["customers"] == 50 and job["done"] + job["skipped"] == 50 and job["failed"] == 0, log
    assert job["customers_per_second"] > 0
    for when in ("idle", "busy"):
        for what in ("list", "page"):
            assert job[when][what]["errors"] == 0 and job[when][what]["p50_ms"] > 0, log
    printed = io.StringIO()
    bulk.print_report(report, out=printed)
    assert "Bulk job: 50 customers" in printed.getvalue()
