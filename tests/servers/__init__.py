"""The servers a test run makes for itself, so that a plain `pytest` runs what CI runs with the PgBouncer
and the replica of .ci/services.sh:

- A streaming replica of the test database's server (replica.py), when the run includes the tests that need
  one (NEEDS_REPLICA) and DATABASE_REPLICA_URL is not set. It is made before Django reads its settings, and
  DATABASE_REPLICA_URL names it while they are read, so settings.py sets up the `replica` alias as for any
  replica. The dashboard's reading from it is then switched on only where a test asks for it
  (`replica_routing`, tests/test_replica.py): the rest of the suite reads what it has just written, and
  reads the primary as it does without a replica.
- PgBouncer in transaction mode (pgbouncer.py), for tests/test_pgbouncer.py when the run does not already
  go through one: the `pgbouncer` fixture, started on first use.

Both live in `.test-servers/<pid>/` (ignored by git) and stop with the session; what a killed session left
running is stopped, and its folder deleted, by the next one. Loaded with `-p tests.servers` (pyproject's
addopts) because pytest-django reads the settings before any conftest.py is imported.
"""

from __future__ import annotations

import atexit
import os

import pytest

from tests.servers import pgbouncer as bouncers
from tests.servers import replica as replicas
from tests.servers.common import ROOT, Unavailable, remove_session_folder, session_folder

NEEDS_REPLICA = (ROOT / "tests" / "test_replica.py", ROOT / "tests" / "test_session_replica.py")
READ_YOUR_WRITES = "autumn_admin.dashboard.replica.ReadYourWritesMiddleware"
REPLICA = pytest.StashKey["replicas.Replica | str"]()  # the session's replica, or why it has none


def _runs_any_of(config: pytest.Config, files) -> bool:
    """Whether the command line's paths include one of `files` (cheap: read before collection; a -k that
    leaves them out still counts)."""
    args = [arg.split("::")[0] for arg in config.known_args_namespace.file_or_dir or []]
    base = config.invocation_params.dir
    if not args:
        args, base = config.getini("testpaths") or ["."], config.rootpath
    paths = [(base / arg).resolve() for arg in args]
    return any(f == path or path in f.parents for f in files for path in paths)


def _make_replica() -> replicas.Replica | str:
    try:
        return replicas.make(replicas.primary_settings(os.environ), session_folder() / "replica")
    except Unavailable as reason:
        return str(reason)
    except Exception as error:  # a bug or an odd machine: the replica's tests say so, the rest of the run goes on
        return f"could not make a replica: {type(error).__name__}: {error}"


_made: dict = {}


def _stop_everything() -> None:
    made = _made.pop("replica", None)
    try:
        if isinstance(made, replicas.Replica):
            try:
                from django.db import connections

                connections["replica"].close()
                connections["replica"].close_pool()
            except Exception:  # Django never got that far: nothing of it to close
                pass
            replicas.stop(made.data, made.bindir)
    finally:
        remove_session_folder()  # and whatever still runs from it


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args):
    # Also after a crash of the run (atexit); what a kill -9 leaves, the next session stops.
    atexit.register(_stop_everything)
    early_config.add_cleanup(_stop_everything)
    options = early_config.known_args_namespace
    if (
        getattr(options, "help", False)
        or getattr(options, "version", False)
        or os.environ.get("DATABASE_REPLICA_URL")
        or not _runs_any_of(early_config, NEEDS_REPLICA)
    ):
        return (yield)
    made = _made["replica"] = early_config.stash[REPLICA] = _make_replica()
    if not isinstance(made, replicas.Replica):
        return (yield)
    # Only while pytest-django reads the settings: the processes the tests start do not inherit it.
    os.environ["DATABASE_REPLICA_URL"] = made.url
    try:
        return (yield)
    finally:
        del os.environ["DATABASE_REPLICA_URL"]


def pytest_configure(config: pytest.Config) -> None:
    if isinstance(config.stash.get(REPLICA, None), replicas.Replica):
        from django.conf import settings

        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != READ_YOUR_WRITES]


def pytest_report_header(config: pytest.Config) -> list[str]:
    made = config.stash.get(REPLICA, None)
    if isinstance(made, replicas.Replica):
        return [
            f"replica: the session's, streaming from {made.primary} on 127.0.0.1:{made.port} "
            f"(PostgreSQL {made.version}, {made.bindir}; made in {made.seconds:.1f} s)"
        ]
    return [f"replica: none ({made})"] if made else []


def session_replica(config: pytest.Config) -> replicas.Replica | None:
    made = config.stash.get(REPLICA, None)
    return made if isinstance(made, replicas.Replica) else None


def replica_missing(config: pytest.Config) -> str:
    """Why the run has no replica: what stopped the session from making one, or how to give it one."""
    made = config.stash.get(REPLICA, None)
    return made if isinstance(made, str) else "needs a streaming replica (set DATABASE_REPLICA_URL)"


def replica_routing(settings) -> None:
    """The dashboard reads its read-only pages from the replica, as settings.py sets it up with a replica
    (`settings`: pytest-django's fixture, which puts MIDDLEWARE back after the test)."""
    if READ_YOUR_WRITES not in settings.MIDDLEWARE:
        middleware = list(settings.MIDDLEWARE)
        after = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
        settings.MIDDLEWARE = [*middleware[: after + 1], READ_YOUR_WRITES, *middleware[after + 1 :]]


@pytest.fixture(scope="session")
def pgbouncer():
    """The session's PgBouncer in transaction mode, in front of the test database's server."""
    from django.db import connections

    try:
        bouncer = bouncers.start(dict(connections["default"].settings_dict), session_folder() / "pgbouncer")
    except Unavailable as reason:
        pytest.fail(str(reason))
    yield bouncer
    bouncers.stop(bouncer)
