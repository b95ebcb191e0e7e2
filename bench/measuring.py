"""What the measurements need: a dashboard session and an API key, the query counts of a page, search terms,
the balances and answers a track run is checked against, the aggregates and event lists it asks for, and the
CPU each answer costs the server and the database."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module

from bench import loadgen
from bench.server import Server, process_cpu_seconds


def dashboard_session(env: str) -> tuple[object, str]:
    """A dashboard user and a session cookie for it, with the environment switch set to `env`."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User

    user, _ = User.objects.get_or_create(username="bench_ops", defaults={"email": "bench@example.com"})
    group = Group.objects.filter(name="Ops").first()
    if group is None:
        raise RuntimeError("The Ops role is missing (billing/migrations/0002_roles creates it): run migrate.")
    user.groups.add(group)
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]  # the one that checks passwords
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session["env"] = env
    session.create()
    return user, f"sessionid={session.session_key}"


def api_key(env: str) -> str:
    """A fresh secret key, made by the documented command."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_api_key", env=env, name="bench", stdout=out, stderr=io.StringIO())
    match = re.search(r"am_sk_\w+_[\w-]+", out.getvalue())
    if not match:
        raise RuntimeError(f"create_api_key printed no key: {out.getvalue()!r}")
    return match[0]


def count_queries(user, env: str, paths: dict[str, str]) -> dict[str, dict]:
    """SQL queries (and response size) of each page, rendered in-process: the second request counts."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    session = client.session
    session["env"] = env
    session.save()
    out = {}
    for name, path in paths.items():
        client.get(path)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        out[name] = {
            "path": path,
            "status": response.status_code,
            "queries": len(ctx.captured_queries),
            "bytes": len(response.content),
        }
    return out


def search_terms(env: str, count: int, seed: int = 11) -> dict[str, list[str]]:
    """Realistic searches, drawn from the data: the middle of an email (surname and number) and the
    first characters of an id, as people paste them; plus one broad term (a mail domain)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT max(id) FROM customers_customer")
        top = cur.fetchone()[0] or 1
        rng = random.Random(seed)
        ids = sorted(rng.sample(range(1, top + 1), min(top, count * 4)))
        cur.execute(
            "SELECT email, customer_id FROM customers_customer WHERE id = ANY(%s) AND env = %s "
            "AND deleted_at IS NULL AND email LIKE '%%.%%@%%' LIMIT %s",
            [ids, env, count],
        )
        rows = cur.fetchall()
    emails = [email.split("@")[0].split(".", 1)[1] for email, _ in rows]
    prefixes = [cid[:9] for _, cid in rows]
    return {"email": emails, "id": prefixes, "broad": ["gmail"]}


def track_balances(customer_ids: list[str], feature_id: str, env: str) -> dict[str, Decimal]:
    """Each customer's remaining balance of the feature (summed over its balances)."""
    from django.db.models import Sum

    from billing.models import Balance

    rows = (
        Balance.objects.filter(
            customer__env=env,
            customer__customer_id__in=customer_ids,
            customer__deleted_at__isnull=True,
            feature__feature_id=feature_id,
        )
        .values_list("customer__customer_id")
        .annotate(total=Sum("remaining"))
    )
    return dict(rows)


def hold_resets(customer_ids: list[str], feature_id: str, env: str) -> None:
    """Keep the tracked balances from resetting in the middle of a measurement (a reset is correct
    behaviour, but it would make the exact arithmetic of the check depend on the clock)."""
    from django.db.models import Q
    from django.utils import timezone

    from billing.models import Balance

    soon = timezone.now() + timedelta(days=1)
    (
        Balance.objects.filter(
            customer__env=env, customer__customer_id__in=customer_ids, feature__feature_id=feature_id
        )
        .filter(Q(next_reset_at__lt=soon))
        .update(next_reset_at=soon + timedelta(days=30))
    )


# The heavy customer's usage charts: day bins read the daily rollup, hour bins and a breakdown the events.
AGGREGATES = {
    "events.aggregate: heavy, 90d by day": {"range": "90d", "bin_size": "day"},
    "events.aggregate: heavy, 24h by hour": {"range": "24h", "bin_size": "hour"},
    "events.aggregate: heavy, 7d by region": {"range": "7d", "bin_size": "day", "group_by": "properties.region"},
}
AGGREGATE_FEATURES = 10


# The heavy customer's events, newest first (what a client paging through them asks): the first page, and
# one month of last spring (a range of older partitions when the events table is partitioned by month).
EVENT_LISTS = {
    "events.list: heavy, newest 100": {"limit": 100},
    "events.list: heavy, a month 6 months ago": {
        "limit": 100,
        "custom_range": {
            "start": int((datetime.now(UTC) - timedelta(days=180)).timestamp() * 1000),
            "end": int((datetime.now(UTC) - timedelta(days=150)).timestamp() * 1000),
        },
    },
}


def heavy_features(customer_id: str, env: str) -> list[str]:
    """The features of the heavy customer's balances: what its usage chart shows."""
    from billing.models import Balance

    ids = Balance.objects.filter(customer__customer_id=customer_id, customer__env=env).values_list(
        "feature__feature_id", flat=True
    )
    return sorted(set(ids))[:AGGREGATE_FEATURES]


def events_since(api_key_prefix: str, since: datetime) -> int:
    from billing.models import Event

    return Event.objects.filter(api_key__prefix=api_key_prefix, created_at__gte=since).count()


def database_backends() -> list[int]:
    """The PostgreSQL backends connected to the benchmark's database, this process's own excepted."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return [row[0] for row in cur.fetchall()]


class CpuMeter:
    """CPU time spent by the server's processes and by the database's backends during a measurement, per
    answer: what a request costs whatever else the machine runs (each process's own clock)."""

    def __init__(self, server: Server):
        self.server = server

    def __enter__(self) -> CpuMeter:
        self.backends = database_backends()
        self.server0 = self.server.cpu_seconds()
        self.db0 = {pid: process_cpu_seconds(pid) for pid in self.backends}
        return self

    def __exit__(self, *exc) -> None:
        self.server_seconds = self.server.cpu_seconds() - self.server0
        backends = set(self.backends) | set(database_backends())  # a pool may have opened more
        self.db_seconds = sum(process_cpu_seconds(pid) - self.db0.get(pid, 0.0) for pid in backends)

    def per_answer(self, answers: int) -> dict:
        n = max(answers, 1)
        return {
            "server_cpu_ms": round(self.server_seconds * 1000 / n, 3),
            "db_cpu_ms": round(self.db_seconds * 1000 / n, 3),
        }


def result_row(result: loadgen.Result) -> dict:
    """A measurement's figures, with the CPU each answer cost the server and the database."""
    return result.summary() | getattr(result, "cpu", {})


def connection_mode(keep_alive: bool) -> str:
    return "keep-alive" if keep_alive else "new conn."


def checked_answers(port: int, key: str, customer_ids: list[str], feature_id: str) -> dict[str, Decimal]:
    """What balances.check answers as each customer's remaining balance (as the SDKs read it)."""
    out = {}
    for cid in customer_ids:
        request = loadgen.post_json(
            "/v1/balances.check", {"customer_id": cid, "feature_id": feature_id}, bearer=key, target=cid
        )
        status, response = loadgen.send(port, request)
        if status == 200:
            body = json.loads(response.partition(b"\r\n\r\n")[2])
            out[cid] = Decimal(str(body["balance"]["remaining"]))
    return out
