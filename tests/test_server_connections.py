"""A burst of concurrent API clients against real servers: every request is served, and each server
process holds no more PostgreSQL connections than its pool allows (settings.py, DB_POOL_MAX)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from bench.loadgen import get, post_json, send
from bench.server import free_port, server_command, server_env
from billing.models import Event
from customers.services.api_keys import api_key_create
from tests.conftest import database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 32
REQUESTS_EACH = 4
APP_NAME = "billing-admin-under-test"  # libpq's application_name of the server's connections (PGAPPNAME)


class Server:
    """A server subprocess on a free port, stopped (and its connections gone) on leaving."""

    def __init__(self, command: list[str], env: dict[str, str], port: int):
        self.command, self.env, self.port = command, env, port
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited: {self.read_log()}"
            try:
                if send(self.port, get("/healthz"), timeout=5)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not answer: {self.read_log()}")

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and, for gunicorn, its workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]


class ConnectionWatch:
    """Counts, every few milliseconds, the server's connections to the test database."""

    def __init__(self):
        s = connection.settings_dict
        self.conn = psycopg.connect(
            host=s["HOST"] or "127.0.0.1",
            port=s["PORT"] or 5432,
            user=s["USER"],
            password=s["PASSWORD"] or None,
            dbname=s["NAME"],
            autocommit=True,
        )
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def count(self) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [APP_NAME],
        ).fetchone()[0]

    def _watch(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.count())
            time.sleep(0.005)

    def __enter__(self) -> ConnectionWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.conn.close()


def burst(port: int, raw_key: str) -> list[int]:
    """CLIENTS threads at once, each sending its requests one after another, each on its own connection."""
    track = post_json(
        "/v1/balances.track", {"customer_id": "acme_corp", "feature_id": "api_calls", "value": 1}, bearer=raw_key
    )
    read = post_json("/v1/customers.get", {"customer_id": "acme_corp"}, bearer=raw_key)
    barrier = threading.Barrier(CLIENTS)
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait(timeout=30)
        for i in range(REQUESTS_EACH):
            try:
                status = send(port, track if i % 2 == 0 else read, timeout=60)[0]
            except OSError:
                status = 0
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return statuses


@pytest.fixture
def served_customer(customer, catalogue, ops):
    from billing.services.products import product_attach

    product_attach(customer=customer, product=catalogue["scale"], actor=ops)  # api_calls with overage
    return api_key_create(env="sandbox", name="Burst", actor=ops)[1]


def _assert_burst_served_within(port: int, raw_key: str, bound: int, server: Server) -> None:
    with ConnectionWatch() as watch:
        statuses = burst(port, raw_key)
    assert statuses == [200] * (CLIENTS * REQUESTS_EACH), (sorted(set(statuses)), server.read_log())
    assert 1 <= watch.peak <= bound, f"{watch.peak} connections to PostgreSQL, the pools allow {bound}"
    assert Event.objects.filter(customer__customer_id="acme_corp").count() == CLIENTS * REQUESTS_EACH // 2


def test_runserver_serves_a_burst_of_32_clients_within_its_pool(served_customer):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "PGAPPNAME": APP_NAME}
    env.pop("DB_POOL_MAX", None)  # the default pool, as the README's run command has it
    # The README's run command; --noreload keeps it one process, so stopping it stops everything.
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with Server(command, env, port) as server:
        _assert_burst_served_within(port, served_customer, bound=10, server=server)


def test_gunicorn_serves_a_burst_of_32_clients_within_its_pools(served_customer):
    port, workers, pool_max = free_port(), 4, 2
    with tempfile.TemporaryDirectory(prefix="static-") as static_root:  # whitenoise indexes it at start
        env = server_env(database_url(), static_root)
        env.update(
            {"DJANGO_SETTINGS_MODULE": "autumn_admin.settings", "PGAPPNAME": APP_NAME, "DB_POOL_MAX": str(pool_max)}
        )
        # The README's production command (DEBUG off), on a free local port.
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "autumn_admin.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
        ]
        with Server(command, env, port) as server:
            _assert_burst_served_within(port, served_customer, bound=workers * pool_max, server=server)


def test_granian_serves_a_burst_of_32_clients_within_its_pools(served_customer):
    port, workers, pool_max = free_port(), 2, 2
    with tempfile.TemporaryDirectory(prefix="static-") as static_root:
        env = server_env(database_url(), static_root)
        env.update(
            {"DJANGO_SETTINGS_MODULE": "autumn_admin.settings", "PGAPPNAME": APP_NAME, "DB_POOL_MAX": str(pool_max)}
        )
        # The README's production command (DEBUG off), on a free local port: more threads than pooled connections.
        with Server(production_command(port, workers=workers), env, port) as server:
            _assert_burst_served_within(port, served_customer, bound=workers * pool_max, server=server)


def production_command(port: int, *, workers: int = 2) -> list[str]:
    """The README's production server: granian's WSGI interface, threads per worker process."""
    return server_command("granian", port, workers)


def _visit(port: int) -> list[tuple]:
    """A person's visit to the dashboard on one kept-alive connection, as a browser makes it: what each answer
    was (status, redirect, content type, the cookies it set, and what the page says)."""
    import re

    import httpx

    from tests.conftest import PASSWORD

    seen = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=30) as client:

        def note(response, *needles):
            seen.append(
                (
                    response.request.method,
                    response.request.url.path,
                    response.status_code,
                    response.headers.get("location"),
                    response.headers.get("content-type"),
                    sorted(response.cookies.keys()),
                    tuple(n in response.text for n in needles),
                )
            )
            return response

        login = note(client.get("/login/"), "Log in")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        note(
            client.post("/login/", data={"username": "olivia_ops", "password": PASSWORD, "csrfmiddlewaretoken": token})
        )
        note(client.get("/customers/"), "Acme Corp")
        page = note(client.get("/customers/acme_corp/"), "Acme Corp", "Available Features", "API calls")
        css = re.search(r'href="(/static/css/app[^"]*\.css)"', page.text).group(1)
        note(client.get(css), ".spark")
        note(client.get("/customers/acme_corp/events/", headers={"HX-Request": "true"}), "section-events")
        export = note(client.get("/exports/customers.csv"), "acme_corp")
        assert "attachment" in export.headers["content-disposition"]
        token = client.cookies["csrftoken"]
        note(client.post("/logout/", headers={"X-CSRFToken": token}))
        note(client.get("/customers/acme_corp/"))
    return seen


def test_the_dashboard_behaves_the_same_under_granian_as_under_gunicorn(served_customer, ops, settings):
    from tests.conftest import PASSWORD

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # the servers' hasher
    ops.set_password(PASSWORD)
    ops.save(update_fields=["password"])
    visits = {}
    with tempfile.TemporaryDirectory(prefix="static-") as static_root:
        env = server_env(database_url(), static_root)
        env.update({"DJANGO_SETTINGS_MODULE": "autumn_admin.settings", "PGAPPNAME": APP_NAME})
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        for name in ("gunicorn", "granian"):
            port = free_port()
            command = (
                production_command(port)
                if name == "granian"
                else [sys.executable, "-m", "gunicorn", "autumn_admin.wsgi", "--bind", f"127.0.0.1:{port}"]
            )
            with Server(command, env, port):
                visits[name] = _visit(port)
    assert visits["granian"] == visits["gunicorn"]
    statuses = [(method, path, status) for method, path, status, *_ in visits["granian"]]
    assert [s for *_, s in statuses] == [200, 302, 200, 200, 200, 200, 200, 302, 302]
    assert all(all(found) for *_, found in visits["granian"]), visits["granian"]
