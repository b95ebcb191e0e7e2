"""Without DATABASE_URL the project runs on an embedded PostgreSQL of its own: started by the first process
that needs it, shared by every process of the checkout, stopped by the last, and never blocked by a crash.
Each test gives it a data folder of its own (EMBEDDED_POSTGRES_DIR), as the checkout's .pgdata/ would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONNECT = "from django.db import connection; connection.ensure_connection(); "
VENDOR = CONNECT + "print(connection.vendor, connection.pg_version // 10000)"
HOLD = CONNECT + "import time; print('attached', flush=True); time.sleep(120)"


def _env(pgdata: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "DATABASE_POOLER")}
    return {**env, "EMBEDDED_POSTGRES_DIR": str(pgdata), **extra}


def _shell(pgdata: Path, code: str = VENDOR, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=_env(pgdata, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _hold(pgdata: Path) -> subprocess.Popen:
    """A process of the project that keeps the server (as runserver or jobs_worker would), once attached."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", HOLD],
        cwd=ROOT,
        env=_env(pgdata),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if line.strip() == "attached":
            return process
    raise AssertionError(process.stderr.read())


def _server_pid(pgdata: Path) -> int | None:
    """The embedded server's pid while it runs (a killed one nobody reaped yet counts as stopped)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return None


def _stopped(pgdata: Path, within: float = 15) -> bool:
    deadline = time.monotonic() + within
    while _server_pid(pgdata) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def pgdata(tmp_path):
    folder = tmp_path / "pgdata"
    yield folder
    pid = _server_pid(folder)  # a test that failed half-way: stop what it left running
    if pid:
        os.kill(pid, signal.SIGTERM)


def test_without_database_url_the_project_runs_on_its_own_postgresql_and_stops_it_on_exit(pgdata):
    first = _shell(pgdata)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == "postgresql 18"
    assert (pgdata / "PG_VERSION").read_text().strip() == "18"
    assert _stopped(pgdata)  # the only process that needed it has exited

    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=_env(pgdata),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr
    count = _shell(pgdata, "from billing.models import Feature; print(Feature.objects.count())")
    assert count.returncode == 0, count.stderr
    assert count.stdout.strip().splitlines()[-1] == "0"  # the tables are there: the data stayed in the folder
    assert _stopped(pgdata)


def test_processes_share_one_server_and_the_last_one_out_stops_it(pgdata):
    holder = _hold(pgdata)
    try:
        server = _server_pid(pgdata)
        assert server is not None
        visitor = _shell(pgdata)  # as a manage.py command beside runserver
        assert visitor.returncode == 0, visitor.stderr
        assert _server_pid(pgdata) == server  # attached to, not started again, and still running after it
    finally:
        holder.send_signal(signal.SIGINT)  # Ctrl-C
        holder.wait(timeout=30)
    assert _stopped(pgdata)


def test_a_killed_process_and_a_killed_server_do_not_block_the_next_start(pgdata):
    holder = _hold(pgdata)
    server = _server_pid(pgdata)
    assert holder.pid in json.loads((pgdata / ".handle_pids.json").read_text())
    holder.kill()  # kill -9: no exit handler runs, it stays listed as a holder
    holder.wait()
    after_holder = _shell(pgdata)
    assert after_holder.returncode == 0, after_holder.stderr
    assert after_holder.stdout.strip().splitlines()[-1] == "postgresql 18"
    assert _stopped(pgdata), "the dead holder kept the server up"

    holder = _hold(pgdata)
    server = _server_pid(pgdata)
    os.kill(server, signal.SIGKILL)  # the server itself, and the process using it
    holder.kill()
    holder.wait()
    again = _shell(pgdata)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == "postgresql 18"
    assert _stopped(pgdata)


def test_a_server_that_cannot_start_says_what_to_do(tmp_path):
    not_a_folder = tmp_path / "pgdata"
    not_a_folder.write_text("a file where the data folder should be")
    result = _shell(not_a_folder)
    assert result.returncode != 0
    assert (
        f"The embedded PostgreSQL (the default database, DATABASE_URL being unset) could not start in {not_a_folder}"
        in (result.stderr)
    )
    for advice in ("permissions: the folder must be writable by", "disk: free some space", "set DATABASE_URL="):
        assert advice in result.stderr


def test_a_database_url_of_another_engine_is_refused(tmp_path):
    result = _shell(tmp_path / "unused", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode != 0
    assert "DATABASE_URL must name a PostgreSQL database" in result.stderr
    assert not (tmp_path / "unused").exists()  # nothing embedded was started either
