"""Monthly partitions of `billing_event` (PostgreSQL's native declarative partitioning).

- `billing_event` is `PARTITION BY RANGE ("timestamp")`: one partition per calendar month in UTC,
  `billing_event_y2026m12`, plus `billing_event_default` for any timestamp outside them (an event
  sent with a timestamp years back or ahead is stored there, never refused and never lost).
- `ensure_partitions` (`manage.py event_partitions`, run by cron daily or monthly) creates the current
  month and the next `ahead` months if missing, and moves rows that the default partition holds for
  a month it creates into that month. Idempotent.
- `drop_months_before` (`manage.py event_retention --keep-months N [--dry-run]`) detaches and drops
  whole months older than the cutoff (instant, no DELETE bloat), deletes the default partition's
  rows older than it, and the idempotency keys of what it dropped.
- What the partition key forces: the primary key is `(id, timestamp)` in PostgreSQL (ids still come
  from one identity sequence only, so each stays unique and Django keeps addressing events by `id`);
  the per-customer uniqueness of idempotency keys lives in the unpartitioned `EventIdempotencyKey`.
- `partition_table` / `unpartition_table`: the migration from a plain table and back (billing
  migration 0014), copying in batches by id under a lock that lets reads go on and makes writes wait
  (docs/scaling.md: how long per million events).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection as default_connection
from django.db import transaction

TABLE = "billing_event"
DEFAULT = f"{TABLE}_default"
BATCH = 500_000


def month_start(d: date) -> date:
    return date(d.year, d.month, 1)


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return datetime(month.year, month.month, 1, tzinfo=UTC).isoformat()


def is_partitioned(connection=default_connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE])
        return cursor.fetchone() is not None


@dataclass
class Partition:
    name: str
    month: date | None  # None: the default partition
    rows: int | None = None  # counted only where asked


def partitions(connection=default_connection, *, count_rows: bool = False) -> list[Partition]:
    """The partitions of billing_event, months in order, then the default one."""
    if not is_partitioned(connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)""",
            [TABLE],
        )
        found = []
        for name, bound in cursor.fetchall():
            month = None
            if bound != "DEFAULT":
                start = bound.split("'")[1]  # FOR VALUES FROM ('2026-12-01 00:00:00+00') TO (...)
                month = datetime.fromisoformat(start).astimezone(UTC).date()
            found.append(Partition(name, month))
        if count_rows:
            for p in found:
                cursor.execute(f'SELECT count(*) FROM "{p.name}"')
                p.rows = cursor.fetchone()[0]
    return sorted(found, key=lambda p: (p.month is None, p.month or date.min))


def _create_month(cursor, month: date) -> int:
    """Create `month`'s partition; the rows the default partition holds for it move there. Returns them."""
    name, lo, hi = partition_name(month), _bound(month), _bound(add_months(month, 1))
    cursor.execute(f'CREATE TABLE "{name}" (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(
        f"""WITH moved AS (DELETE FROM {DEFAULT} WHERE "timestamp" >= %s AND "timestamp" < %s RETURNING *)
            INSERT INTO "{name}" SELECT * FROM moved""",
        [lo, hi],
    )
    moved = cursor.rowcount
    cursor.execute(f"ALTER TABLE {TABLE} ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{lo}') TO ('{hi}')")
    return moved


def ensure_partitions(*, ahead: int = 3, today: date | None = None, connection=default_connection) -> list[str]:
    """Create the partitions of this month and the next `ahead` months that are missing. Idempotent.
    Returns the names created."""
    if not is_partitioned(connection):
        return []
    first = month_start(today or datetime.now(UTC).date())
    have = {p.month for p in partitions(connection)}
    created = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for n in range(ahead + 1):
            month = add_months(first, n)
            if month not in have:
                _create_month(cursor, month)
                created.append(partition_name(month))
    return created


@dataclass
class Retention:
    cutoff: date
    dropped: list[Partition]
    default_rows: int
    keys: int


def drop_months_before(
    *, keep_months: int, dry_run: bool, today: date | None = None, connection=default_connection
) -> Retention:
    """Drop the events of months before the first of the `keep_months` kept (this month counts as one):
    whole partitions detached and dropped, the default partition's older rows deleted, and the
    idempotency keys of those events. With `dry_run`, only counts what would go."""
    if keep_months < 1:
        raise ValueError("keep_months must be at least 1 (the current month)")
    cutoff = add_months(month_start(today or datetime.now(UTC).date()), -(keep_months - 1))
    if not is_partitioned(connection):
        return Retention(cutoff, [], 0, 0)
    old = [p for p in partitions(connection, count_rows=True) if p.month is not None and p.month < cutoff]
    bound = _bound(cutoff)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM {DEFAULT} WHERE "timestamp" < %s', [bound])
        default_rows = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM billing_eventidempotencykey WHERE event_timestamp < %s", [bound])
        keys = cursor.fetchone()[0]
        if not dry_run:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # a table with pending FK checks can't be dropped
            for p in old:
                cursor.execute(f'ALTER TABLE {TABLE} DETACH PARTITION "{p.name}"')
                cursor.execute(f'DROP TABLE "{p.name}"')
            cursor.execute(f'DELETE FROM {DEFAULT} WHERE "timestamp" < %s', [bound])
            cursor.execute("DELETE FROM billing_eventidempotencykey WHERE event_timestamp < %s", [bound])
    return Retention(cutoff, old, default_rows, keys)


# --- the migration from a plain table, and back ------------------------------------------------


def _definitions(cursor, table: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The secondary indexes (name, definition) and foreign keys (definition) of `table`."""
    cursor.execute(
        """SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary ORDER BY i.relname""",
        [table],
    )
    indexes = list(cursor.fetchall())
    cursor.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = to_regclass(%s) AND contype = 'f'""",
        [table],
    )
    fks = [f'ADD CONSTRAINT "{name}" {definition}' for name, definition in cursor.fetchall()]
    return indexes, fks


def _rebuild(connection, *, partitioned: bool, batch: int, out) -> dict:
    """Copy billing_event into a new table, partitioned by month or plain, and put it in its place, in one
    transaction. The copy holds an EXCLUSIVE lock: reads (pages, the API's reads) go on, writes (tracks,
    deletes) wait. Only the final swap takes ACCESS EXCLUSIVE, for milliseconds before the commit."""
    new = f"{TABLE}_new"
    started = time.perf_counter()
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
        indexes, fks = _definitions(cursor, TABLE)
        cursor.execute(f'SELECT coalesce(min(id), 0), coalesce(max(id), 0), count(*), min("timestamp") FROM {TABLE}')
        low, high, total, oldest = cursor.fetchone()
        months: list[date] = []
        if partitioned:
            now = month_start(datetime.now(UTC).date())
            # From the oldest event, and at least a year back (events loaded later with past timestamps,
            # like the demo's, land in their month rather than the default partition), to 3 months ahead.
            month = min(month_start(oldest.astimezone(UTC).date()) if oldest else now, add_months(now, -12))
            while month <= add_months(now, 3):
                months.append(month)
                month = add_months(month, 1)
        cursor.execute(
            f"CREATE TABLE {new} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE)"
            + (' PARTITION BY RANGE ("timestamp")' if partitioned else "")
        )
        for month in months:
            lo, hi = _bound(month), _bound(add_months(month, 1))
            cursor.execute(
                f"CREATE TABLE \"{partition_name(month)}\" PARTITION OF {new} FOR VALUES FROM ('{lo}') TO ('{hi}')"
            )
        if partitioned:
            cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {new} DEFAULT")
        copied, lo = 0, low
        while lo <= high and total:
            cursor.execute(f"INSERT INTO {new} SELECT * FROM {TABLE} WHERE id >= %s AND id < %s", [lo, lo + batch])
            copied += cursor.rowcount
            lo += batch
            if out and total > batch:
                out(f"  {copied:,} / {total:,} events copied ({time.perf_counter() - started:.0f} s)")
        copy_seconds = time.perf_counter() - started
        key = '(id, "timestamp")' if partitioned else "(id)"
        cursor.execute(f"ALTER TABLE {new} ADD CONSTRAINT {new}_pkey PRIMARY KEY {key}")
        for name, definition in indexes:
            definition = definition.replace(" ON ONLY ", " ON ").replace(f" ON public.{TABLE} ", f" ON public.{new} ")
            cursor.execute(definition.replace(f"INDEX {name} ", f"INDEX {name}_new ", 1))
        for fk in fks:
            cursor.execute(f"ALTER TABLE {new} {fk}")
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{new}', 'id'), greatest(%s, 1), %s)", [high, high > 0])
        index_seconds = time.perf_counter() - started - copy_seconds
        # The swap: the old table (its indexes, keys and sequence) goes, the new one takes its names.
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"ALTER TABLE {new} RENAME TO {TABLE}")
        cursor.execute(f"ALTER TABLE {TABLE} RENAME CONSTRAINT {new}_pkey TO {TABLE}_pkey")
        cursor.execute(f"ALTER SEQUENCE {new}_id_seq RENAME TO {TABLE}_id_seq")
        for name, _ in indexes:
            cursor.execute(f'ALTER INDEX "{name}_new" RENAME TO "{name}"')
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    return {
        "events": total,
        "copy_seconds": round(copy_seconds, 1),
        "index_seconds": round(index_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "partitions": len(months) + (1 if partitioned else 0),
    }


def partition_table(connection=default_connection, *, batch: int = BATCH, out=None) -> dict:
    """Make billing_event partitioned by month (nothing if it already is)."""
    if is_partitioned(connection):
        return {}
    return _rebuild(connection, partitioned=True, batch=batch, out=out)


def unpartition_table(connection=default_connection, *, batch: int = BATCH, out=None) -> dict:
    """Back to one plain table (the migration's reverse)."""
    if not is_partitioned(connection):
        return {}
    return _rebuild(connection, partitioned=False, batch=batch, out=out)
