"""A run's report: the machine it ran on, the ratios (pages ÷ the floors, track and check ÷ pgbench), the
verdict against the targets, and the table printed at the end."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from bench.measuring import connection_mode
from bench.plan import FLOOR, FLOOR_BARE, TARGETS


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
            f"| {row['name']} | {row['concurrency']} | {connection_mode(row.get('keep_alive', False))} | "
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
