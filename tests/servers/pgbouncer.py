"""PgBouncer in transaction mode in front of the test database's server, made by the test session itself
(tests/test_pgbouncer.py) when the run does not already go through one: Debian's `pgbouncer` program
(there is no pip package of it), its configuration in the session's folder, listening on 127.0.0.1 on a
free port, trusting the clients as .ci/services.sh's does."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.servers.common import Unavailable, free_port, hand_over, run_as, tail, wait_for, write

NOT_INSTALLED = "PgBouncer is not installed (apt-get install pgbouncer)"


@dataclass
class PgBouncer:
    port: int
    folder: Path
    process: subprocess.Popen


def installed() -> str | None:
    return shutil.which("pgbouncer")


def _config(db: dict, folder: Path, port: int) -> str:
    server = f"host={db.get('HOST') or '127.0.0.1'} port={db.get('PORT') or 5432}"
    if db.get("PASSWORD"):
        server += f" password={db['PASSWORD']}"
    user = db.get("USER") or "postgres"
    return f"""; The test session's PgBouncer (tests/servers/pgbouncer.py): transaction pooling, as in .ci/services.sh.
[databases]
* = {server}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "userlist.txt"}
admin_users = {user}
stats_users = {user}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {folder / "pgbouncer.log"}
"""


def _answers(port: int, db: dict) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=db.get("USER") or "postgres",
            dbname="pgbouncer",
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=2,
        ) as admin:
            admin.execute("SHOW VERSION")
        return True
    except psycopg.Error:
        return False


def _ready(process: subprocess.Popen, port: int, db: dict) -> bool:
    """It answers on its port (False if it exited first: the port taken, say)."""
    answered = wait_for(lambda: process.poll() is not None or _answers(port, db), timeout=15)
    return answered and process.poll() is None


def start(db: dict, folder: Path) -> PgBouncer:
    program = installed()
    if program is None:
        raise Unavailable(NOT_INSTALLED)
    folder.mkdir(exist_ok=True)
    hand_over(folder)
    write(folder / "userlist.txt", f'"{db.get("USER") or "postgres"}" ""\n')
    log = folder / "pgbouncer.log"
    for _ in range(3):  # another port if the free one was taken in the meantime
        port = free_port()
        write(folder / "pgbouncer.ini", _config(db, folder, port))
        write(log, "")
        process = subprocess.Popen(
            [program, str(folder / "pgbouncer.ini")],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=run_as(),
        )
        if _ready(process, port, db):
            return PgBouncer(port, folder, process)
        process.kill()
        process.wait()
        if "Address already in use" not in tail(log, 20):
            break
    raise Unavailable(f"PgBouncer did not start; its log ({log}) ends:\n{tail(log)}")


def stop(bouncer: PgBouncer) -> None:
    bouncer.process.terminate()
    try:
        bouncer.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        bouncer.process.kill()
        bouncer.process.wait()
