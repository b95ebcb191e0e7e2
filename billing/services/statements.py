"""What the one-statement paths (track and check in one round trip) share: the columns they select for each model,
a cursor whose statements PostgreSQL prepares, and model instances read back from the statement's row."""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor

from billing.models import Balance, CustomerProduct, Feature, Product
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


class Row:
    """A statement's row read from left to right: `take(model)` gives the next model's columns, `value()` the
    next single value."""

    def __init__(self, row, start: int = 0):
        self.row, self.at = row, start

    def take(self, model) -> tuple:
        n = len(columns(model))
        raw, self.at = self.row[self.at : self.at + n], self.at + n
        return raw

    def skip(self, *models) -> Row:
        for model in models:
            self.take(model)
        return self

    def value(self):
        raw, self.at = self.row[self.at], self.at + 1
        return raw


def balance_from_row(row: Row, *, customer: Customer, feature: Feature) -> Balance:
    """The balance at `row`, then its customer product and product (their columns are NULL for a grant), with
    the customer and feature already read: describing it later needs no query."""
    balance = from_row(Balance, row.take(Balance))
    cp_raw, product_raw = row.take(CustomerProduct), row.take(Product)
    balance.customer = customer
    balance.feature = feature
    if balance.customer_product_id is not None:
        cp = from_row(CustomerProduct, cp_raw)
        cp.customer = customer
        cp.product = from_row(Product, product_raw)
        balance.customer_product = cp
    return balance


def optional_from_row(model, raw):
    """`from_row`, or None where a LEFT JOIN found nothing (its id is NULL)."""
    return from_row(model, raw) if raw[0] is not None else None


class _PreparedCursor(ServerBindingCursor):
    """Django's psycopg cursor, asking PostgreSQL to prepare every statement it runs."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor():
    """A cursor whose statements PostgreSQL plans once per connection (a server-side prepared statement).
    Planning the track statement, with its CTEs and joins, cost more than running it (~1 ms against
    ~0.7 ms); prepared, each call only binds its values. Logged like any cursor (CaptureQueriesContext).

    Only where the connection's settings allow prepared statements (psycopg's `prepare_threshold` is not
    None, settings.py): behind a pooler in transaction mode, which cannot keep them, it is Django's plain
    cursor and the statement is planned each time."""
    # As Django's own cursor(): drop a connection that failed its health check, then (re)connect.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        return connection.cursor()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparedCursor(connection.connection))
