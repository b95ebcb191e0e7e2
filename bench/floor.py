"""The Python floor of the hot API calls: a bare WSGI app (no framework) doing the same work as
/v1/balances.check and /v1/balances.track on tables of its own, with ONE prepared statement per call on a
connection kept per thread, served by the same server with the same settings as the project
(bench/server.py). docs/benchmarks.md reports each hot call as a ratio of its floor, measured in the
same run (bench/run.py).

- check: read the JSON body, hash the bearer key, key → customer → the feature's balance, answer JSON;
- track: the same, then draw the balance down and insert the event, in the one statement.

`load(database_url, raw_key, customer_ids, feature_id)` makes its tables (floor_*) and fills them with
the same key, customers and feature the project's measurement uses."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from decimal import Decimal

import psycopg

SCHEMA = """
DROP TABLE IF EXISTS floor_event, floor_balance, floor_customer, floor_key;
CREATE TABLE floor_key (id bigserial PRIMARY KEY, key_hash text UNIQUE NOT NULL, env text NOT NULL);
CREATE TABLE floor_customer (id bigserial PRIMARY KEY, env text NOT NULL, customer_id text NOT NULL,
                             UNIQUE (env, customer_id));
CREATE TABLE floor_balance (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, feature_id text NOT NULL,
                            granted numeric(32, 6) NOT NULL, remaining numeric(32, 6) NOT NULL);
CREATE INDEX floor_balance_customer_feature ON floor_balance (customer_id, feature_id);
CREATE TABLE floor_event (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, feature_id text NOT NULL,
                          value numeric(32, 6) NOT NULL, properties jsonb NOT NULL DEFAULT '{}',
                          created_at timestamptz NOT NULL DEFAULT now());
"""

CHECK = """
SELECT b.granted, b.remaining FROM floor_key k
JOIN floor_customer c ON c.env = k.env AND c.customer_id = %s
JOIN floor_balance b ON b.customer_id = c.id AND b.feature_id = %s
WHERE k.key_hash = %s
"""

TRACK = """
WITH b AS (
    UPDATE floor_balance b SET remaining = b.remaining - %s
    FROM floor_key k, floor_customer c
    WHERE k.key_hash = %s AND c.env = k.env AND c.customer_id = %s AND b.customer_id = c.id AND b.feature_id = %s
    RETURNING b.customer_id, b.feature_id, b.granted, b.remaining
), e AS (
    INSERT INTO floor_event (customer_id, feature_id, value) SELECT customer_id, feature_id, %s FROM b
)
SELECT granted, remaining FROM b
"""

_local = threading.local()


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, prepare_threshold=0)
    return conn


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _answer(start_response, status: str, body: dict) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        return _answer(start_response, "200 OK", {"ok": True})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    key_hash = hashlib.sha256(environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").encode()).hexdigest()
    customer_id, feature_id = body["customer_id"], body["feature_id"]
    conn = _connection()
    if path == "/v1/balances.check":
        row = conn.execute(CHECK, (customer_id, feature_id, key_hash)).fetchone()
        if row is None:
            return _answer(start_response, "404 Not Found", {"code": "not_found"})
        granted, remaining = row
        required = Decimal(str(body.get("required_balance", 1)))
        return _answer(
            start_response,
            "200 OK",
            {
                "allowed": remaining >= required,
                "customer_id": customer_id,
                "balance": {"feature_id": feature_id, "granted": _number(granted), "remaining": _number(remaining)},
            },
        )
    if path == "/v1/balances.track":
        value = Decimal(str(body.get("value", 1)))
        row = conn.execute(TRACK, (value, key_hash, customer_id, feature_id, value)).fetchone()
        if row is None:
            return _answer(start_response, "404 Not Found", {"code": "not_found"})
        granted, remaining = row
        return _answer(
            start_response,
            "200 OK",
            {
                "customer_id": customer_id,
                "value": _number(value),
                "balance": {"feature_id": feature_id, "granted": _number(granted), "remaining": _number(remaining)},
            },
        )
    return _answer(start_response, "404 Not Found", {"code": "not_found"})


def load(database_url: str, raw_key: str, env: str, customer_ids: list[str], feature_id: str) -> None:
    """The floor's tables, with one key, the customers and one balance each of `feature_id`."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO floor_key (key_hash, env) VALUES (%s, %s)", (hashlib.sha256(raw_key.encode()).hexdigest(), env)
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO floor_customer (env, customer_id) VALUES (%s, %s)", [(env, cid) for cid in customer_ids]
            )
        conn.execute(
            "INSERT INTO floor_balance (customer_id, feature_id, granted, remaining) "
            "SELECT id, %s, 1000000000, 1000000000 FROM floor_customer",
            (feature_id,),
        )
        conn.execute("ANALYZE floor_key, floor_customer, floor_balance")


def balances(database_url: str, feature_id: str) -> dict[str, Decimal]:
    """Each customer's remaining balance on the floor (to check the floor's own tracks are exact)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.customer_id, b.remaining FROM floor_balance b JOIN floor_customer c ON c.id = b.customer_id "
            "WHERE b.feature_id = %s",
            (feature_id,),
        ).fetchall()
    return dict(rows)
