"""The common check in one round trip: `balance_check_by_key` answers "may this customer use this
feature?" for a caller that names the customer and feature by their ids and holds a secret key (the API's
balances.check), with the key, the customer, the feature and the balance found in one statement.

It serves only the common request, and says None for anything else, having changed nothing: the caller
then goes the general way (authenticate, look up, `balances.balance_check`), which also gives the right
error. The common request: PostgreSQL; an active key of the environment; a live customer; a metered or
boolean feature that no credit system counts (no `CreditCost` row names it, as credit system or as
metered feature); exactly one balance of the feature that has not expired; and no balance of the
customer due for a reset (the general path resets those first, and records it). Both give the same
answer (tests/api/test_check_one_round_trip.py compares them case by case).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from billing.models import Balance, CustomerProduct, Feature, Price, Product
from billing.quantities import parse_quantity
from billing.services.balances import CheckResult, FeatureBalance, covers
from billing.services.statements import Row, balance_from_row, from_row, optional_from_row, prepared_cursor, select_list
from customers.models import Customer
from customers.services.api_keys import API_KEY_LAST_USED_RESOLUTION

# One statement: the key (active, of the environment), the live customer, the feature (metered or
# boolean, in no credit system's schema), the customer's balances of it that have not expired. `ok` holds
# a row only for the common case (one balance, nothing of the customer's due for a reset); then the key's
# last use is noted (at most once a minute, as `api_key_mark_used` does) and the row comes back with the
# balance's customer product, product and usage price. No row: the caller takes the general path.
_CHECK_BY_KEY_SQL = (
    """
WITH k AS (
    SELECT id FROM customers_apikey WHERE key_hash = %(key_hash)s AND env = %(env)s AND revoked_at IS NULL
), c AS (
    SELECT {customer} FROM customers_customer c
    WHERE c.env = %(env)s AND c.customer_id = %(customer_id)s AND c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM k)
), f AS (
    SELECT {feature} FROM billing_feature f
    WHERE f.feature_id = %(feature_id)s AND f.type IN ('metered', 'boolean')
      AND NOT EXISTS (SELECT 1 FROM billing_creditcost cc
                      WHERE cc.credit_system_id = f.id OR cc.metered_feature_id = f.id)
), b AS (
    SELECT {balance} FROM billing_balance b
    WHERE b.customer_id = (SELECT id FROM c) AND b.feature_id = (SELECT id FROM f)
      AND (b.expires_at IS NULL OR b.expires_at > %(now)s)
), ok AS (
    SELECT 1 WHERE (SELECT count(*) FROM b) = 1
      AND NOT EXISTS (SELECT 1 FROM billing_balance d
                      WHERE d.customer_id = (SELECT id FROM c) AND d.next_reset_at <= %(now)s
                        AND d.interval <> 'lifetime' AND (d.expires_at IS NULL OR d.expires_at > %(now)s))
), u AS (
    UPDATE customers_apikey SET last_used_at = %(now)s
    WHERE id = (SELECT id FROM k) AND (last_used_at IS NULL OR last_used_at <= %(last_used_before)s)
      AND EXISTS (SELECT 1 FROM ok)
)
SELECT {b}, {cp}, {p}, {c}, {f}, {pr}
FROM b CROSS JOIN ok CROSS JOIN c CROSS JOIN f
LEFT JOIN billing_customerproduct cp ON cp.id = b.customer_product_id
LEFT JOIN billing_product p ON p.id = cp.product_id
LEFT JOIN LATERAL (SELECT * FROM billing_price WHERE product_id = cp.product_id AND type = 'usage'
                   AND feature_id = b.feature_id ORDER BY id LIMIT 1) pr ON TRUE
""".replace("{customer}", select_list("c", Customer))
    .replace("{feature}", select_list("f", Feature))
    .replace("{balance}", select_list("b", Balance))
    .replace("{b}", select_list("b", Balance))
    .replace("{cp}", select_list("cp", CustomerProduct))
    .replace("{p}", select_list("p", Product))
    .replace("{c}", select_list("c", Customer))
    .replace("{f}", select_list("f", Feature))
    .replace("{pr}", select_list("pr", Price))
)


@dataclass
class KeyedCheck:
    """A check made with `balance_check_by_key`: what it found by id, its answer, and the balance's usage price."""

    customer: Customer
    feature: Feature
    result: CheckResult
    usage_price: Price | None


def balance_check_by_key(
    *,
    key_hash: str,
    env: str,
    customer_id: str,
    feature_id: str,
    required_balance=1,
    now: datetime | None = None,
) -> KeyedCheck | None:
    """`balance_check` in one round trip for the common request (see the module), else None."""
    required = parse_quantity(required_balance, field="required_balance")
    now = now or timezone.now()
    with prepared_cursor() as cursor:
        cursor.execute(
            _CHECK_BY_KEY_SQL,
            {
                "key_hash": key_hash,
                "env": env,
                "customer_id": customer_id,
                "feature_id": feature_id,
                "now": now,
                "last_used_before": now - API_KEY_LAST_USED_RESOLUTION,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # b, cp, p, c, f, pr: the balance's columns first, then the customer's and feature's it is given.
    rest = Row(row).skip(Balance, CustomerProduct, Product)
    customer = from_row(Customer, rest.take(Customer))
    feature = from_row(Feature, rest.take(Feature))
    balance = balance_from_row(Row(row), customer=customer, feature=feature)
    fb = FeatureBalance.of(feature, [balance])
    return KeyedCheck(
        customer=customer,
        feature=feature,
        result=CheckResult(allowed=covers(fb, required), balance=fb),  # `balance_check`'s own rule
        usage_price=optional_from_row(Price, rest.take(Price)),
    )
