"""load: one statement reads every row a balance request needs — the customer's balances of the features
asked about and of the credit systems that list them (with each line's cost), and the plan (customer
product, product) each balance comes with — locked in id order when the request will write, so
concurrent tracks queue on the rows and never deadlock.

Entities (Autumn's rule, its server's get_total_balance and performDeduction): a request that names an
entity reads that entity's own balances (a plan's per-entity items) and the customer-level ones; a request
that names none reads all of them, every entity's included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import signals
from django.db.models.base import ModelState
from psycopg import adapters as psycopg_adapters
from psycopg.postgres import types as postgres_types
from psycopg.pq import Format

from billing.engine.decide import Rows
from billing.models import Balance, CreditCost, CustomerProduct, Entity, Feature, Price, Product
from customers.models import ApiKey, Customer
from customers.services.api_keys import API_KEY_LAST_USED_RESOLUTION


@cache
def columns(model) -> tuple[str, ...]:
    """The model's concrete columns, in the order `from_row` reads them."""
    return tuple(f.column for f in model._meta.concrete_fields)


def select_list(alias: str, model) -> str:
    """The model's columns as a statement selects them from `alias`: `alias."id", alias."…"`."""
    return ", ".join(f'{alias}."{c}"' for c in columns(model))


@cache
def _builder(model):
    """How `from_row` builds an instance of `model`: its fields' attribute names, and the position and ORM
    database converters of each field that has any (a JSON field's), looked up once per model."""
    fields = model._meta.concrete_fields
    converting = []
    for i, f in enumerate(fields):
        converters = tuple(f.get_db_converters(connection) + connection.ops.get_db_converters(f))
        if converters:
            converting.append((i, f, converters))
    # Django's own constructor where something listens to an instance being made (none of the engine's
    # models has a listener: this is a guard, so such a listener is never skipped).
    plain = not (signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model))
    return tuple(f.attname for f in fields), tuple(converting), plain


def from_row(model, raw, related: dict | None = None):
    """A model instance from a raw row of its concrete columns, converted as the ORM would, as
    `Model.from_db` makes it but without its per-field `__init__` (the instance's attributes set at once);
    `related`: instances of its foreign keys already known, by field name (as `balance.customer = …` sets
    them, the ids being the row's)."""
    names, converting, plain = _builder(model)
    if converting:
        raw = list(raw)
        for i, f, converters in converting:
            value = raw[i]
            for converter in converters:
                value = converter(value, f, connection)
            raw[i] = value
    if not plain:
        obj = model.from_db(connection.alias, None, raw)
        for name, value in (related or {}).items():
            setattr(obj, name, value)
        return obj
    obj = model.__new__(model)
    obj.__dict__.update(zip(names, raw, strict=True))
    state = obj._state = ModelState()
    state.adding = False
    state.db = connection.alias
    if related:
        state.fields_cache = dict(related)
    return obj


# psycopg's own timestamptz loader (in C with psycopg[binary]), which Django's connections replace with a
# Python subclass of the pure-Python one to set the tzinfo: the same value for a connection in UTC, as
# Django's always is with USE_TZ (DatabaseWrapper.ensure_timezone), at a fraction of the cost — a load
# reads a dozen timestamps.
_TIMESTAMPTZ = psycopg_adapters.get_loader(postgres_types["timestamptz"].oid, Format.TEXT)


class _PreparedCursor(ServerBindingCursor):
    """Django's psycopg cursor, asking PostgreSQL to prepare every statement it runs."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor():
    """A cursor whose statements PostgreSQL plans once per connection (a server-side prepared statement);
    Django's plain cursor where the connection's settings allow none (behind a pooler in transaction mode,
    `prepare_threshold` None: settings.py). Either reads timestamps with psycopg's own loader."""
    connection.close_if_health_check_failed()  # as Django's own cursor(): drop a failed connection, reconnect
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        cursor = connection.cursor()
        raw = cursor.cursor
    else:
        with connection.wrap_database_errors:
            raw = _PreparedCursor(connection.connection)
            cursor = connection._prepare_cursor(raw)
    if connection.timezone_name == "UTC" and connection.timezone is UTC:
        raw.adapters.register_loader("timestamptz", _TIMESTAMPTZ)
    return cursor


_N = {model: len(columns(model)) for model in (Balance, CustomerProduct, Product, Feature, Price)}

_BALANCES = f"""
SELECT {select_list("b", Balance)}, {select_list("cp", CustomerProduct)}, {select_list("p", Product)},
       {select_list("bf", Feature)}, cc.metered_feature_id, cc.credit_cost, {select_list("pr", Price)}
FROM {Balance._meta.db_table} b
JOIN {Feature._meta.db_table} bf ON bf.id = b.feature_id
LEFT JOIN {CustomerProduct._meta.db_table} cp ON cp.id = b.customer_product_id
LEFT JOIN {Product._meta.db_table} p ON p.id = cp.product_id
LEFT JOIN {CreditCost._meta.db_table} cc
       ON cc.credit_system_id = b.feature_id AND cc.metered_feature_id = ANY({{features}})
LEFT JOIN LATERAL (SELECT * FROM {Price._meta.db_table} WHERE product_id = cp.product_id AND type = 'usage'
                   AND feature_id = b.feature_id ORDER BY id LIMIT 1) pr ON TRUE
WHERE b.customer_id = {{customer}} AND (b.feature_id = ANY({{features}}) OR cc.id IS NOT NULL)
  AND ({{any_entity}} OR b.entity_id IS NULL OR b.entity_id = {{entity}})
ORDER BY b.id, bf.feature_id, cc.id
"""
_DUE_EXISTS = f"""SELECT EXISTS (
    SELECT 1 FROM {Balance._meta.db_table} d
    WHERE d.customer_id = {{customer}} AND d.next_reset_at <= %(now)s AND d.interval <> 'lifetime'
      AND (d.expires_at IS NULL OR d.expires_at > %(now)s)) AS due"""


def _balances(customer: str, features: str, any_entity: str, entity: str, *, lock: bool) -> str:
    """The balance rows' statement; `any_entity`: true when the request names no entity (every balance),
    else `entity`: the entity's id (its balances and the customer-level ones)."""
    sql = _BALANCES.replace("{customer}", customer).replace("{features}", features)
    sql = sql.replace("{any_entity}", any_entity).replace("{entity}", entity)
    return sql + ("FOR UPDATE OF b" if lock else "")


# Whether any balance of the customer is due for a reset (a check brings the customer current first), then
# the rows (none: one row of NULLs).
_STATEMENT = {
    lock: f"""SELECT x.due, q.* FROM ({_DUE_EXISTS.replace("{customer}", "%(customer)s")}) x
LEFT JOIN ({_balances("%(customer)s", "%(features)s", "%(entity)s::bigint IS NULL", "%(entity)s::bigint", lock=lock)}) q
ON TRUE"""
    for lock in (False, True)
}

_NO_ENTITY_NAMED = "%(entity_id)s::varchar IS NULL"

# The same rows for a request that names the customer and feature by their ids and brings its secret key:
# the key (active, of the environment), the live customer and the feature are found in the statement, and
# the key's last use noted (at most once a minute, as `api_key_mark_used` does). Noting it never waits for
# the key's row (SKIP LOCKED; NO KEY UPDATE, the UPDATE's own lock, so events referencing the key still
# insert): a batch that noted it holds that row until it commits, and a track by the same key must neither
# queue behind it nor deadlock with it. No row: the key, the customer or the feature is not found (the
# caller answers the error the usual way). A request naming an entity the customer doesn't have finds the
# customer-level rows only, and says so (`Keyed.entity_pk` None): the caller answers the 404.
_BY_KEY = {
    lock: f"""WITH k AS (
    SELECT id FROM {ApiKey._meta.db_table}
    WHERE key_hash = %(key_hash)s AND env = %(env)s AND revoked_at IS NULL AND kind = 'secret'
), c AS (
    SELECT {select_list("c", Customer)} FROM {Customer._meta.db_table} c
    WHERE c.env = %(env)s AND c.customer_id = %(customer_id)s AND c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM k)
), f AS (
    SELECT {select_list("f", Feature)} FROM {Feature._meta.db_table} f WHERE f.feature_id = %(feature_id)s
), en AS (
    SELECT e.id FROM {Entity._meta.db_table} e JOIN c ON e.customer_id = c.id
    WHERE %(entity_id)s::varchar IS NOT NULL AND e.entity_id = %(entity_id)s::varchar AND e.deleted_at IS NULL
), u AS (
    UPDATE {ApiKey._meta.db_table} SET last_used_at = %(now)s
    WHERE id = (SELECT a.id FROM {ApiKey._meta.db_table} a
                WHERE a.id = (SELECT id FROM k) AND (a.last_used_at IS NULL OR a.last_used_at <= %(last_used_before)s)
                FOR NO KEY UPDATE SKIP LOCKED)
      AND EXISTS (SELECT 1 FROM c) AND EXISTS (SELECT 1 FROM f)
)
SELECT (SELECT id FROM k), (SELECT id FROM en), c.*, f.*, x.due, q.*
FROM c CROSS JOIN f
CROSS JOIN LATERAL ({_DUE_EXISTS.replace("{customer}", "c.id")}) x
LEFT JOIN LATERAL ({_balances("c.id", "ARRAY[f.id]", _NO_ENTITY_NAMED, "(SELECT id FROM en)", lock=lock)}) q
ON TRUE"""
    for lock in (False, True)
}


def load(
    customer: Customer, features: list[Feature], *, lock: bool, now: datetime, entity: Entity | None = None
) -> Rows:
    """The rows for a request about `features` of `customer` (see the module); `lock`: it will write;
    `entity`: the customer's entity the request names (its balances and the customer's), else every balance."""
    params = {"customer": customer.pk, "features": [f.pk for f in features], "now": now, "entity": entity and entity.pk}
    with prepared_cursor() as cursor:
        cursor.execute(_STATEMENT[lock], params)
        raw_rows = cursor.fetchall()
    rows = _rows(customer, features, raw_rows)
    rows.entity_named = entity is not None
    return rows


@dataclass
class Keyed:
    """What a request by key found: the key's id, the customer, the feature, the rows, and the id of the
    entity the request named (None when it named none, or one the customer doesn't have)."""

    api_key_id: int
    customer: Customer
    feature: Feature
    rows: Rows
    entity_pk: int | None = None


def load_by_key(
    *,
    key_hash: str,
    env: str,
    customer_id: str,
    feature_id: str,
    lock: bool,
    now: datetime,
    begin: bool = False,
    entity_id: str | None = None,
) -> Keyed | None:
    """`load` for a caller that names the customer and feature by their ids and holds a secret key, in the
    same one statement; None when the key, the customer or the feature is not found. `begin`: the caller's
    own transaction starts here (the connection in autocommit, outside any atomic block): BEGIN and the
    statement go to PostgreSQL together, in one round trip (a psycopg pipeline)."""
    params = {
        "key_hash": key_hash,
        "env": env,
        "customer_id": customer_id,
        "feature_id": feature_id,
        "entity_id": entity_id,
        "now": now,
        "last_used_before": now - API_KEY_LAST_USED_RESOLUTION,
    }
    with prepared_cursor() as cursor:
        if begin:
            raw = connection.connection
            with connection.wrap_database_errors, raw.pipeline():
                raw.execute("BEGIN")
                cursor.execute(_BY_KEY[lock], params)
        else:
            cursor.execute(_BY_KEY[lock], params)
        raw_rows = cursor.fetchall()
    if not raw_rows:
        return None
    first = raw_rows[0]
    n_c, n_f = len(columns(Customer)), _N[Feature]
    customer = from_row(Customer, first[2 : 2 + n_c])
    feature = from_row(Feature, first[2 + n_c : 2 + n_c + n_f])
    rows = _rows(customer, [feature], [raw[2 + n_c + n_f :] for raw in raw_rows])
    rows.entity_named = entity_id is not None
    return Keyed(api_key_id=first[0], customer=customer, feature=feature, rows=rows, entity_pk=first[1])


def _rows(customer: Customer, features: list[Feature], raw_rows) -> Rows:
    """Rows from the statement's: the due flag, then each balance's columns (NULLs when there is none)."""
    due = bool(raw_rows and raw_rows[0][0])
    asked = {f.pk: f for f in features}
    systems: dict[int, Feature] = {}
    balances: dict[int, Balance] = {}
    pools: dict[int, list[tuple[Feature, Decimal]]] = {}
    products: dict[int, Product] = {}
    prices: dict[int, Price | None] = {}
    for raw in raw_rows:
        if raw[1] is None:
            continue
        at = 1
        parts = []
        for model in (Balance, CustomerProduct, Product, Feature):
            parts.append(raw[at : at + _N[model]])
            at += _N[model]
        metered_id, cost = raw[at], raw[at + 1]
        price_raw = raw[at + 2 :]
        b_raw, cp_raw, p_raw, f_raw = parts
        feature = asked.get(f_raw[0]) or systems.get(f_raw[0])
        if feature is None:
            feature = systems[f_raw[0]] = from_row(Feature, f_raw)
        if metered_id is not None:
            line = (feature, cost)
            if line not in pools.setdefault(metered_id, []):
                pools[metered_id].append(line)
        if b_raw[0] in balances:
            continue
        related = {"customer": customer, "feature": feature}
        if cp_raw[0] is not None:
            if p_raw[0] not in products:
                products[p_raw[0]] = from_row(Product, p_raw)
            related["customer_product"] = from_row(
                CustomerProduct, cp_raw, {"customer": customer, "product": products[p_raw[0]]}
            )
        balance = from_row(Balance, b_raw, related)
        prices[balance.pk] = from_row(Price, price_raw) if price_raw[0] is not None else None
        balances[balance.pk] = balance
    for lines in pools.values():
        lines.sort(key=lambda line: line[0].feature_id)
    return Rows(features=list(features), pools=pools, balances=list(balances.values()), customer_due=due, prices=prices)


_DUE = f"""
SELECT {select_list("b", Balance)}, {select_list("f", Feature)}
FROM {Balance._meta.db_table} b JOIN {Feature._meta.db_table} f ON f.id = b.feature_id
WHERE b.customer_id = %(customer)s AND b.next_reset_at <= %(now)s AND b.interval <> 'lifetime'
  AND (b.expires_at IS NULL OR b.expires_at > %(now)s)
ORDER BY b.id
FOR UPDATE OF b
"""


def load_due(customer: Customer, now: datetime) -> Rows:
    """Every balance of `customer` due for a reset, locked in id order (to bring the customer current)."""
    with prepared_cursor() as cursor:
        cursor.execute(_DUE, {"customer": customer.pk, "now": now})
        raw_rows = cursor.fetchall()
    n = _N[Balance]
    features: dict[int, Feature] = {}
    balances = []
    for raw in raw_rows:
        f_raw = raw[n:]
        feature = features.get(f_raw[0]) or features.setdefault(f_raw[0], from_row(Feature, f_raw))
        balance = from_row(Balance, raw[:n], {"customer": customer, "feature": feature})
        balances.append(balance)
    return Rows(features=list(features.values()), balances=balances)
