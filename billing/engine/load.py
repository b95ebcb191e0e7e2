"""load: one statement reads every row a balance request needs — the customer's balances of the features
asked about and of the credit systems that list them (with each line's cost), and the plan (customer
product, product) each balance comes with — locked in id order when the request will write, so
concurrent tracks queue on the rows and never deadlock."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import cache

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor

from billing.engine.decide import Rows
from billing.models import Balance, CreditCost, CustomerProduct, Feature, Product
from customers.models import Customer


@cache
def columns(model) -> tuple[str, ...]:
    """The model's concrete columns, in the order `from_row` reads them."""
    return tuple(f.column for f in model._meta.concrete_fields)


def select_list(alias: str, model) -> str:
    """The model's columns as a statement selects them from `alias`: `alias."id", alias."…"`."""
    return ", ".join(f'{alias}."{c}"' for c in columns(model))


def from_row(model, raw):
    """A model instance from a raw row of its concrete columns, converted as the ORM would."""
    values = []
    for f, value in zip(model._meta.concrete_fields, raw, strict=True):
        for converter in f.get_db_converters(connection) + connection.ops.get_db_converters(f):
            value = converter(value, f, connection)
        values.append(value)
    return model.from_db(connection.alias, None, values)


class _PreparedCursor(ServerBindingCursor):
    """Django's psycopg cursor, asking PostgreSQL to prepare every statement it runs."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor():
    """A cursor whose statements PostgreSQL plans once per connection (a server-side prepared statement);
    Django's plain cursor where the connection's settings allow none (behind a pooler in transaction mode,
    `prepare_threshold` None: settings.py)."""
    connection.close_if_health_check_failed()  # as Django's own cursor(): drop a failed connection, reconnect
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        return connection.cursor()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparedCursor(connection.connection))


_N = {model: len(columns(model)) for model in (Balance, CustomerProduct, Product, Feature)}

_BALANCES = f"""
SELECT {select_list("b", Balance)}, {select_list("cp", CustomerProduct)}, {select_list("p", Product)},
       {select_list("f", Feature)}, cc.metered_feature_id, cc.credit_cost
FROM {Balance._meta.db_table} b
JOIN {Feature._meta.db_table} f ON f.id = b.feature_id
LEFT JOIN {CustomerProduct._meta.db_table} cp ON cp.id = b.customer_product_id
LEFT JOIN {Product._meta.db_table} p ON p.id = cp.product_id
LEFT JOIN {CreditCost._meta.db_table} cc
       ON cc.credit_system_id = b.feature_id AND cc.metered_feature_id = ANY(%(features)s)
WHERE b.customer_id = %(customer)s AND (b.feature_id = ANY(%(features)s) OR cc.id IS NOT NULL)
ORDER BY b.id, f.feature_id, cc.id
"""
# The rows, and (first column, on every row, and on the one row when there is no balance) whether any
# balance of the customer is due for a reset: a check brings the customer current first.
_SELECT = f"""
SELECT x.due, q.* FROM (
    SELECT EXISTS (SELECT 1 FROM {Balance._meta.db_table} d
                   WHERE d.customer_id = %(customer)s AND d.next_reset_at <= %(now)s AND d.interval <> 'lifetime'
                     AND (d.expires_at IS NULL OR d.expires_at > %(now)s)) AS due
) x LEFT JOIN ({_BALANCES}) q ON TRUE
"""
_LOCKING = _BALANCES + "FOR UPDATE OF b"
_DUE = f"""
SELECT {select_list("b", Balance)}, {select_list("f", Feature)}
FROM {Balance._meta.db_table} b JOIN {Feature._meta.db_table} f ON f.id = b.feature_id
WHERE b.customer_id = %(customer)s AND b.next_reset_at <= %(now)s AND b.interval <> 'lifetime'
ORDER BY b.id
FOR UPDATE OF b
"""


def load(customer: Customer, features: list[Feature], *, lock: bool, now: datetime) -> Rows:
    """The rows for a request about `features` of `customer` (see the module); `lock`: it will write.
    Read without a lock, the rows also say whether any balance of the customer is due for a reset."""
    params = {"customer": customer.pk, "features": [f.pk for f in features], "now": now}
    with prepared_cursor() as cursor:
        cursor.execute(_LOCKING if lock else _SELECT, params)
        raw_rows = cursor.fetchall()
    due = False
    if not lock:
        due = bool(raw_rows and raw_rows[0][0])
        raw_rows = [raw[1:] for raw in raw_rows if raw[1] is not None]
    asked = {f.pk: f for f in features}
    systems: dict[int, Feature] = {}
    balances: dict[int, Balance] = {}
    pools: dict[int, list[tuple[Feature, Decimal]]] = {}
    products: dict[int, Product] = {}
    for raw in raw_rows:
        at = 0
        parts = []
        for model in (Balance, CustomerProduct, Product, Feature):
            parts.append(raw[at : at + _N[model]])
            at += _N[model]
        metered_id, cost = raw[at], raw[at + 1]
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
        balance = from_row(Balance, b_raw)
        balance.customer = customer
        balance.feature = feature
        if cp_raw[0] is not None:
            cp = from_row(CustomerProduct, cp_raw)
            cp.customer = customer
            if p_raw[0] not in products:
                products[p_raw[0]] = from_row(Product, p_raw)
            cp.product = products[p_raw[0]]
            balance.customer_product = cp
        balances[balance.pk] = balance
    for lines in pools.values():
        lines.sort(key=lambda line: line[0].feature_id)
    return Rows(features=list(features), pools=pools, balances=list(balances.values()), customer_due=due)


def load_due(customer: Customer, now: datetime) -> Rows:
    """Every balance of `customer` due for a reset, locked in id order (to bring the customer current)."""
    with prepared_cursor() as cursor:
        cursor.execute(_DUE, {"customer": customer.pk, "now": now})
        raw_rows = cursor.fetchall()
    n = _N[Balance]
    features: dict[int, Feature] = {}
    balances = []
    for raw in raw_rows:
        balance = from_row(Balance, raw[:n])
        f_raw = raw[n:]
        balance.customer = customer
        balance.feature = features.get(f_raw[0]) or features.setdefault(f_raw[0], from_row(Feature, f_raw))
        balances.append(balance)
    return Rows(features=list(features.values()), balances=balances)
