"""The balance engine: every state change of products, balances, events and rewards.

The dashboard, the REST API and the management commands all call these functions, each passing
the actor. Each runs in one transaction, locks the rows it reads before writing them, and writes
its audit entry in that same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing import rollup, stripe_gateway
from billing.intervals import add_intervals, next_after
from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    CustomerReward,
    Event,
    Feature,
    FeatureType,
    Interval,
    Price,
    Product,
    ProductItem,
    Reward,
    RewardDuration,
    UsageType,
)
from billing.quantities import MAX_ABS, parse_quantity
from customers.audit import SYSTEM, Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.formatting import format_qty
from customers.models import ApiKey, AuditEntry, Customer
from customers.services.api_keys import API_KEY_LAST_USED_RESOLUTION
from customers.stale import StaleForm, by_whom, last_change
from customers.validation import require_reason

ZERO = Decimal(0)
UNSET = object()


def _balance_snapshot(balance: Balance) -> dict:
    return {
        "feature": balance.feature_id and balance.feature.feature_id,
        "remaining": balance.remaining,
        "granted": balance.granted,
        "usage": balance.usage,
        "next_reset_at": balance.next_reset_at,
    }


# --- resets -------------------------------------------------------------------------------------


def _reset_if_due(balance: Balance, now: datetime) -> bool:
    """Reset a locked balance whose reset time has passed. The caller saves it."""
    if balance.next_reset_at is None or balance.next_reset_at > now or not balance.resets:
        return False
    before = _balance_snapshot(balance)
    balance.remaining = balance.allowance
    balance.adjustment = ZERO
    balance.next_reset_at = next_after(balance.next_reset_at, balance.interval, balance.interval_count, now)
    audit_record(
        actor=SYSTEM,
        action=AuditAction.BALANCE_RESET,
        customer=balance.customer,
        target_type="balance",
        target_id=balance.pk,
        before=before,
        after=_balance_snapshot(balance),
    )
    return True


def balances_reset_due(*, customer: Customer | None = None, now: datetime | None = None, batch_size: int = 500) -> int:
    """Reset every balance whose reset time has passed (of one customer, or all). Returns how many.

    Reads first without a lock, so a page that has nothing to reset pays one cheap query.
    """
    now = now or timezone.now()
    due = Balance.objects.filter(next_reset_at__lte=now).exclude(interval=Interval.LIFETIME)
    if customer is not None:
        due = due.filter(customer=customer)
    count = 0
    while True:
        ids = list(due.order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return count
        with transaction.atomic():
            locked = Balance.objects.select_for_update().select_related("customer", "feature")
            for balance in locked.filter(id__in=ids).order_by("id"):
                if _reset_if_due(balance, now):
                    balance.save(update_fields=["remaining", "adjustment", "next_reset_at", "updated_at"])
                    count += 1
        if customer is not None and len(ids) < batch_size:
            return count


# --- products -----------------------------------------------------------------------------------


def _period_end(product: Product, start: datetime) -> datetime | None:
    recurring = product.recurring_price
    if recurring is None:
        return None
    return add_intervals(start, recurring.interval, recurring.interval_count)


@transaction.atomic
def product_attach(
    *,
    customer: Customer,
    product: Product,
    actor: Actor,
    status: str = CustomerProductStatus.ACTIVE,
    quantity: int = 1,
    trial_ends_at: datetime | None = None,
    stripe_subscription_id: str = "",
    now: datetime | None = None,
    reason: str = "",
    replace: CustomerProduct | None = None,
) -> CustomerProduct:
    """Put a customer on a product and create its balances.

    A plan (not an add-on) replaces the customer's live plan of the same group; usage recorded on
    the old plan's balances is carried over to the new ones, so switching plans never forgets usage.

    `replace` swaps exactly that customer product (plan or add-on) for `product` in place, as a
    custom product does: status, quantity, billing period and reset dates stay as they were.
    """
    now = now or timezone.now()
    if product.custom_for_id and product.custom_for_id != customer.pk:
        raise ServiceError("That custom product belongs to another customer.", code="product_not_found", status=404)
    live = CustomerProduct.objects.select_for_update().filter(customer=customer, status__in=LIVE_PRODUCT_STATUSES)
    live = list(live.select_related("product"))
    if any(cp.product_id == product.pk for cp in live):
        raise Conflict(f"{customer.customer_id} already has {product.name}.", code="product_already_attached")

    if replace is not None:
        replaced = [cp for cp in live if cp.pk == replace.pk]
        if not replaced:
            raise Conflict(
                f"{replace.product.name} is no longer active for {customer.customer_id}.", code="product_not_active"
            )
        inherit = replaced[0]
        status, quantity = inherit.status, inherit.quantity
        trial_ends_at, stripe_subscription_id = inherit.trial_ends_at, inherit.stripe_subscription_id
    else:
        inherit = None
        replaced = [
            cp
            for cp in live
            if not product.is_add_on and not cp.product.is_add_on and cp.product.group == product.group
        ]
    carried: dict[int, Decimal] = {}
    kept_resets: dict[tuple[int, str, int], datetime | None] = {}
    if replaced:
        old_balances = Balance.objects.select_for_update().filter(customer_product__in=replaced)
        for old in old_balances.order_by("id"):
            _reset_if_due(old, now)
            carried[old.feature_id] = carried.get(old.feature_id, ZERO) + old.usage
            kept_resets[(old.feature_id, old.interval, old.interval_count)] = old.next_reset_at
            old.delete()
        for cp in replaced:
            cp.status = CustomerProductStatus.EXPIRED
            cp.ended_at = now
            if inherit is not None:
                # The Stripe subscription now belongs to the replacement; webhooks must find only it.
                cp.stripe_subscription_id = ""
            cp.save(update_fields=["status", "ended_at", "stripe_subscription_id"])

    if inherit is not None:
        cp = CustomerProduct.objects.create(
            customer=customer,
            product=product,
            status=status,
            started_at=inherit.started_at,
            quantity=quantity,
            current_period_start=inherit.current_period_start,
            current_period_end=inherit.current_period_end,
            canceled_at=inherit.canceled_at,
            trial_ends_at=trial_ends_at,
            stripe_subscription_id=stripe_subscription_id,
        )
    else:
        period_end = _period_end(product, now)
        cp = CustomerProduct.objects.create(
            customer=customer,
            product=product,
            status=status,
            started_at=now,
            quantity=quantity,
            current_period_start=now if period_end else None,
            current_period_end=period_end,
            trial_ends_at=trial_ends_at,
            stripe_subscription_id=stripe_subscription_id,
        )
    for item in product.items.select_related("feature").order_by("id"):
        feature = item.feature
        lifetime = item.interval == Interval.LIFETIME or feature.usage_type == UsageType.CONTINUOUS_USE
        allowance = ZERO if feature.type == FeatureType.BOOLEAN else item.included * quantity
        remaining = allowance - carried.get(feature.pk, ZERO)
        if remaining < 0 and not item.overage_allowed:
            remaining = ZERO
        interval = Interval.LIFETIME if lifetime else item.interval
        next_reset_at = None if lifetime else add_intervals(now, item.interval, item.interval_count)
        if inherit is not None and (feature.pk, interval, item.interval_count) in kept_resets:
            next_reset_at = kept_resets[(feature.pk, interval, item.interval_count)]
        Balance.objects.create(
            customer=customer,
            feature=feature,
            customer_product=cp,
            allowance=allowance,
            adjustment=ZERO,
            remaining=remaining,
            unlimited=item.unlimited,
            overage_allowed=item.overage_allowed,
            usage_limit=item.usage_limit,
            interval=interval,
            interval_count=item.interval_count,
            next_reset_at=next_reset_at,
        )
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_ATTACH,
        customer=customer,
        target_type="product",
        target_id=product.product_id,
        before={"products": [cp.product.product_id for cp in replaced]} if replaced else None,
        after={"product": product.product_id, "version": product.version, "status": status},
        reason=reason,
    )
    return cp


def _item_snapshot(items) -> dict:
    return {
        item.feature.feature_id: ("unlimited" if item.unlimited else item.included)
        for item in sorted(items, key=lambda i: i.feature.feature_id)
    }


@transaction.atomic
def product_customize(
    *,
    customer: Customer,
    customer_product: CustomerProduct,
    items: list[dict],
    actor: Actor,
    reason: str,
    now: datetime | None = None,
    expected: dict | None = None,
) -> CustomerProduct:
    """Make a custom version of a customer's product, for this customer only, and put it in place.

    `items` lists the changes, one dict per feature: `{"feature": Feature, "included": quantity}`
    and optionally `unlimited`, `interval`, `interval_count`, `overage_allowed` (for a feature the
    product lacks). The custom product copies the prices and the other items. Its balances take
    the new allowances from now on; usage so far is carried over and reset dates stay as they were.
    This is the permanent alternative to a balance edit, which lasts only until the next reset.

    `expected` (the dashboard's form) holds what the form showed: `{"items": {feature_id:
    included or "unlimited"}, "balances": {balance pk: granted or "unlimited"}}`. If the product
    was replaced, its allowances or a balance's grant changed since, StaleForm is raised.
    """
    reason = require_reason(reason)
    now = now or timezone.now()
    locked = (
        CustomerProduct.objects.select_for_update()
        .select_related("product")
        .filter(pk=customer_product.pk, customer=customer)
        .first()
    )
    if locked is None or locked.status not in LIVE_PRODUCT_STATUSES:
        if expected is not None and locked is not None:
            _customize_replaced(customer, locked)
        raise Conflict("That product is no longer active for this customer.", code="product_not_active")
    source = locked.product
    base = (source.base_product or source) if source.is_custom else source

    current = {item.feature_id: item for item in source.items.select_related("feature")}
    if expected is not None:
        _check_customize_expected(customer, locked, current.values(), expected)
    new_items: dict[int, ProductItem] = {
        fid: ProductItem(
            feature=item.feature,
            included=item.included,
            unlimited=item.unlimited,
            interval=item.interval,
            interval_count=item.interval_count,
            overage_allowed=item.overage_allowed,
            usage_limit=item.usage_limit,
        )
        for fid, item in current.items()
    }
    seen: set[int] = set()
    for change in items:
        feature = change.get("feature")
        if not isinstance(feature, Feature) or feature.archived:
            raise ServiceError("Choose a feature.", code="invalid_input", field="feature")
        if feature.pk in seen:
            raise ServiceError(f"{feature.name} is listed twice.", code="invalid_input", field="feature")
        seen.add(feature.pk)
        unlimited = bool(change.get("unlimited", False))
        included = ZERO
        if feature.type != FeatureType.BOOLEAN and not unlimited:
            included = parse_quantity(change.get("included"), field="included", allow_negative=False)
        item = new_items.get(feature.pk)
        if item is None:
            lifetime = feature.type == FeatureType.BOOLEAN or feature.usage_type == UsageType.CONTINUOUS_USE
            interval = change.get("interval") or (Interval.LIFETIME if lifetime else Interval.MONTH)
            if interval not in Interval.values:
                raise ServiceError(f"Unknown reset interval {interval!r}.", code="invalid_input", field="interval")
            item = new_items[feature.pk] = ProductItem(
                feature=feature,
                interval=interval,
                interval_count=int(change.get("interval_count") or 1),
                overage_allowed=bool(change.get("overage_allowed", False)),
            )
        item.included = included
        item.unlimited = unlimited
    before, after = _item_snapshot(current.values()), _item_snapshot(new_items.values())
    if before == after:
        raise ServiceError(
            f"Nothing to change: these are {source.name}'s allowances already.", code="invalid_input", field="items"
        )

    taken = Product.objects.filter(custom_for=customer, product_id=base.product_id).values_list("version", flat=True)
    version = max([base.version - 1, *taken]) + 1
    custom = Product.objects.create(
        product_id=base.product_id,
        name=base.name,
        version=version,
        group=source.group,
        is_add_on=source.is_add_on,
        is_default=False,
        custom_for=customer,
        base_product=base,
        created_at=now,
    )
    for price in source.prices.all():
        price.pk = None
        price.product = custom
        price.save()
    for item in new_items.values():
        item.product = custom
    ProductItem.objects.bulk_create(list(new_items.values()))
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_CUSTOMIZE,
        customer=customer,
        target_type="product",
        target_id=base.product_id,
        before={"product": source.product_id, "items": before},
        after={"product": custom.product_id, "version": custom.version, "custom": True, "items": after},
        reason=reason,
    )
    return product_attach(customer=customer, product=custom, actor=actor, now=now, reason=reason, replace=locked)


def _customize_replaced(customer: Customer, cp: CustomerProduct) -> None:

    who = by_whom(last_change(customer.audit_entries.filter(action__startswith="product."), lambda e: True))
    raise StaleForm(
        f"{cp.product.name} was replaced or ended since you opened this form{who}. "
        "Reopen Customize from the customer page.",
        code="product_not_active",
    )


def _check_customize_expected(customer: Customer, cp: CustomerProduct, items, expected: dict) -> None:
    """Refuse a custom product built on allowances or grants that changed since the form showed them.

    The product and its balances are locked, so a concurrent balance edit waits or is seen here.
    Tracked usage is no conflict: it is carried over to the custom product as it is at this moment.
    """

    def shown(value) -> str:
        return "unlimited" if value == "unlimited" else format_qty(value)

    changes = []
    now_items = _item_snapshot(items)
    seen_items = expected.get("items", {})
    names = {item.feature.feature_id: item.feature.name for item in items}
    names.update(Feature.objects.filter(feature_id__in=set(seen_items) - set(names)).values_list("feature_id", "name"))
    for fid in sorted(set(now_items) | set(seen_items)):
        seen, now = seen_items.get(fid), now_items.get(fid)
        if seen == now:
            continue
        if now is None:
            changes.append(f"{names.get(fid, fid)} is no longer part of {cp.product.name}")
        elif seen is None:
            changes.append(f"{cp.product.name} now includes {names.get(fid, fid)} ({shown(now)})")
        else:
            changes.append(f"{names.get(fid, fid)} now has an allowance of {shown(now)} (was {shown(seen)})")
    seen_balances = expected.get("balances", {})
    balances = {
        b.pk: b
        for b in Balance.objects.select_for_update()
        .select_related("feature")
        .filter(customer_product=cp)
        .order_by("id")
    }
    for pk in sorted(set(balances) | set(seen_balances)):
        balance = balances.get(pk)
        now = None if balance is None else ("unlimited" if balance.unlimited else balance.granted)
        if now == seen_balances.get(pk):
            continue
        edits = AuditEntry.objects.filter(target_type="balance", target_id=str(pk), action__startswith="balance.")
        who = by_whom(last_change(edits, lambda e: True))
        if balance is None:
            changes.append(f"a balance of {cp.product.name} was removed{who}")
        elif pk not in seen_balances:
            changes.append(f"{balance.feature.name} got a new balance{who}, granted {shown(now)}")
        else:
            changes.append(
                f"the {balance.feature.name} balance was edited{who}: granted is now {shown(now)}"
                f" (was {shown(seen_balances[pk])})"
            )
    if changes:
        raise StaleForm(
            f"{cp.product.name} changed since you opened this form: {'; '.join(changes)}. "
            "Check the new figures and try again.",
            field="items",
        )


@transaction.atomic
def customer_product_update(
    *,
    customer_product: CustomerProduct,
    actor: Actor,
    reason: str = "",
    now: datetime | None = None,
    **changes,
) -> CustomerProduct:
    """Change a customer product's status or dates, as its subscription moves on (Stripe webhooks).

    `changes` may hold status, current_period_start, current_period_end, canceled_at, ended_at and
    trial_ends_at. Expiring a product removes its balances (its features stop), and expiring a plan
    puts the customer back on the default plan of its group when no other plan of that group is live.
    """
    allowed = {"status", "current_period_start", "current_period_end", "canceled_at", "ended_at", "trial_ends_at"}
    unknown = set(changes) - allowed
    if unknown:
        raise ServiceError(f"{', '.join(sorted(unknown))} can't be changed here.", code="invalid_input")
    if "status" in changes and changes["status"] not in CustomerProductStatus.values:
        raise ServiceError(f"Unknown status {changes['status']!r}.", code="invalid_input", field="status")
    now = now or timezone.now()
    locked = (
        CustomerProduct.objects.select_for_update().select_related("product", "customer").get(pk=customer_product.pk)
    )
    expiring = changes.get("status") == CustomerProductStatus.EXPIRED and locked.status in LIVE_PRODUCT_STATUSES
    if expiring and changes.get("ended_at") is None:
        changes["ended_at"] = now
    changed = {k: v for k, v in changes.items() if getattr(locked, k) != v}
    if not changed:
        return locked
    before = {k: getattr(locked, k) for k in changed}
    for key, value in changed.items():
        setattr(locked, key, value)
    locked.save(update_fields=list(changed))
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_UPDATE,
        customer=locked.customer,
        target_type="product",
        target_id=locked.product.product_id,
        before=before,
        after=changed,
        reason=reason,
    )
    if expiring:
        Balance.objects.filter(customer_product=locked).delete()
        product = locked.product
        still_on_plan = CustomerProduct.objects.filter(
            customer=locked.customer,
            status__in=LIVE_PRODUCT_STATUSES,
            product__is_add_on=False,
            product__group=product.group,
        ).exists()
        if not product.is_add_on and not still_on_plan:
            defaults = Product.objects.filter(
                is_default=True, archived=False, custom_for__isnull=True, is_add_on=False, group=product.group
            ).exclude(pk=product.pk)
            for default in defaults:
                product_attach(
                    customer=locked.customer, product=default, actor=actor, now=now, reason=f"{product.name} ended"
                )
    customer_product.__dict__.update({k: getattr(locked, k) for k in changed})
    return locked


# --- usage --------------------------------------------------------------------------------------


@dataclass
class TrackResult:
    event: Event
    balances: list[Balance] = field(default_factory=list)
    replayed: bool = False


def _deduct(balances: list[Balance], value: Decimal) -> None:
    """Draw `value` from the balances in order. Positive remainders are used first; what is left
    goes negative on the first balance that allows overage (up to its usage limit), and is
    otherwise dropped: without overage a balance stops at 0 while the event keeps the full value."""
    if any(b.unlimited for b in balances):
        return
    rest = value
    if rest < 0:  # a refund gives usage back, newest grants last
        for b in reversed(balances):
            give = min(-rest, b.usage)
            if give > 0:
                b.remaining += give
                rest += give
        return
    for b in balances:
        take = min(rest, max(b.remaining, ZERO))
        b.remaining -= take
        rest -= take
        if rest == 0:
            return
    for b in balances:
        if b.overage_allowed:
            floor = b.granted - b.usage_limit if b.usage_limit is not None else -MAX_ABS
            # Overage stops at the usage limit, and at the largest quantity kept (-10^15): the event
            # still records the full value, as a balance without overage stops at 0.
            b.remaining = max(b.remaining - rest, floor, -MAX_ABS)
            return


def feature_for_track(*, feature_id: str | None = None, event_name: str | None = None) -> Feature:
    """The feature a track call refers to, by id or by one of its event names."""
    if feature_id:
        feature = Feature.objects.filter(feature_id=feature_id, archived=False).first()
        if feature is None:
            raise ServiceError(f"Feature {feature_id!r} not found.", code="feature_not_found", status=404)
        return feature
    if event_name:
        # The catalogue is small: matching in Python works the same on SQLite and PostgreSQL.
        features = list(Feature.objects.filter(archived=False))
        feature = next((f for f in features if event_name in (f.event_names or [])), None) or next(
            (f for f in features if f.feature_id == event_name), None
        )
        if feature is None:
            raise ServiceError(
                f"No feature is tracked by the event {event_name!r}.", code="feature_not_found", status=404
            )
        return feature
    raise ServiceError("Give a feature_id or an event_name.", code="invalid_input", field="feature_id")


def balance_track(
    *,
    customer: Customer,
    feature: Feature,
    value,
    actor: Actor,
    event_name: str = "",
    properties: dict | None = None,
    timestamp: datetime | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> TrackResult:
    """Record usage: deduct it from the customer's balances and write the event row, atomically.

    The balance rows are locked (in id order, so concurrent tracks never deadlock) before they
    are read, so concurrent tracks and edits never lose an update.
    """
    if feature.type == FeatureType.BOOLEAN:
        raise ServiceError(
            f"{feature.feature_id} is an on/off feature: there is no usage to track.", code="invalid_inputs"
        )
    value = parse_quantity(value, field="value")
    now = now or timezone.now()
    if not idempotency_key and connection.vendor == "postgresql":
        fast = _track_in_one_statement(
            customer=customer,
            feature=feature,
            value=value,
            event_name=event_name or "",
            properties=properties or {},
            timestamp=timestamp or now,
            api_key=actor if isinstance(actor, ApiKey) else None,
            now=now,
        )
        if fast is not None:
            return fast
    if idempotency_key:
        existing = Event.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if existing is not None:
            return TrackResult(event=existing, balances=list(_feature_balances(customer, feature)), replayed=True)
    try:
        with transaction.atomic():
            balances = list(
                Balance.objects.select_for_update().filter(customer=customer, feature=feature).order_by("id")
            )
            for b in balances:
                b.customer = customer
                b.feature = feature
                _reset_if_due(b, now)
            _deduct(balances, value)
            for b in balances:
                b.save(update_fields=["remaining", "adjustment", "next_reset_at", "updated_at"])
            event = Event.objects.create(
                customer=customer,
                feature=feature,
                event_name=event_name or "",
                value=value,
                timestamp=timestamp or now,
                properties=properties or {},
                idempotency_key=idempotency_key or None,
                api_key=actor if isinstance(actor, ApiKey) else None,
                created_at=now,
            )
            rollup.add(customer_id=customer.pk, feature_id=feature.pk, moment=event.timestamp, value=value)
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = Event.objects.get(customer=customer, idempotency_key=idempotency_key)
        return TrackResult(event=existing, balances=list(_feature_balances(customer, feature)), replayed=True)
    return TrackResult(event=event, balances=balances)


# The common track, on PostgreSQL, in one statement and one round trip: the customer has exactly one
# balance of the feature, it is limited and not due for a reset. The UPDATE takes the row lock, so
# concurrent tracks queue on it exactly as in the general path, and the lock is held for one
# statement and the commit instead of four round trips. The CASE is `_deduct` for a single balance
# (tests/test_track_fast_path.py checks the two agree case by case); anything else — several
# balances, a due reset, an unlimited balance, no balance, an idempotency key — takes the general
# path below, which this statement then has not touched.
_BALANCE_COLUMNS = [f.column for f in Balance._meta.concrete_fields]
_CP_COLUMNS = [f.column for f in CustomerProduct._meta.concrete_fields]
_PRODUCT_COLUMNS = [f.column for f in Product._meta.concrete_fields]
_CUSTOMER_COLUMNS = [f.column for f in Customer._meta.concrete_fields]
_FEATURE_COLUMNS = [f.column for f in Feature._meta.concrete_fields]
_PRICE_COLUMNS = [f.column for f in Price._meta.concrete_fields]


def _columns(alias: str, columns: list[str]) -> str:
    return ", ".join(f'{alias}."{c}"' for c in columns)


def _track_statement(
    *, customer: str, feature: str, api_key: str, before: str = "", after: str = "", columns: str = "", joins: str = ""
) -> str:
    """The one-statement track, with the customer, feature and key given as SQL expressions; `before` and
    `after`: more CTEs (ending, resp. starting, with a comma), `columns` and `joins`: more of the answer."""
    return (
        (
            "WITH "
            + before
            + """
b AS (
    UPDATE billing_balance AS t SET
        remaining = CASE
            WHEN %(v)s < 0 THEN t.remaining + GREATEST(0, LEAST(-(%(v)s), t.allowance + t.adjustment - t.remaining))
            WHEN %(v)s <= GREATEST(t.remaining, 0) THEN t.remaining - %(v)s
            WHEN NOT t.overage_allowed THEN t.remaining - GREATEST(t.remaining, 0)
            WHEN t.usage_limit IS NULL THEN GREATEST(t.remaining - %(v)s, %(floor)s)
            ELSE GREATEST(t.remaining - %(v)s, t.allowance + t.adjustment - t.usage_limit, %(floor)s)
        END,
        updated_at = %(now)s
    WHERE t.customer_id = {customer} AND t.feature_id = {feature} AND NOT t.unlimited
      AND (t.next_reset_at IS NULL OR t.next_reset_at > %(now)s OR t.interval = 'lifetime')
      AND NOT EXISTS (SELECT 1 FROM billing_balance o
                      WHERE o.customer_id = t.customer_id AND o.feature_id = t.feature_id AND o.id <> t.id)
    RETURNING {balance_columns}
), e AS (
    INSERT INTO billing_event (customer_id, feature_id, event_name, value, "timestamp", properties,
                               idempotency_key, api_key_id, created_at)
    SELECT b.customer_id, b.feature_id, %(event_name)s, %(v)s, %(timestamp)s, %(properties)s, NULL, {api_key},
           %(now)s
    FROM b
    RETURNING id
), r AS (
    INSERT INTO billing_dailyusage (customer_id, feature_id, day, value)
    SELECT b.customer_id, b.feature_id, %(day)s, %(v)s FROM b
    """
            + rollup.ADD_ON_CONFLICT
            + """
)"""
            + after
            + """
SELECT e.id, b.*, {cp_columns}, {product_columns}"""
            + (", " + columns if columns else "")
            + """
FROM b CROSS JOIN e
LEFT JOIN billing_customerproduct cp ON cp.id = b.customer_product_id
LEFT JOIN billing_product p ON p.id = cp.product_id
"""
            + joins
        )
        .replace("{customer}", customer)
        .replace("{feature}", feature)
        .replace("{api_key}", api_key)
        .replace("{balance_columns}", _columns("t", _BALANCE_COLUMNS))
        .replace("{cp_columns}", _columns("cp", _CP_COLUMNS))
        .replace("{product_columns}", _columns("p", _PRODUCT_COLUMNS))
    )


_TRACK_SQL = _track_statement(customer="%(customer)s", feature="%(feature)s", api_key="%(api_key)s")

# The same track for a request that names the customer and feature by their ids and brings its secret
# key (/v1/balances.track): the key, customer and feature are looked up inside the statement, the key's
# last use is noted (at most once a minute), and the answer's usage price comes back with the rest.
# No row: the key, customer or feature is unknown, or the track is not the common case — nothing was
# written, and the caller takes the general path (which gives the right error).
_TRACK_BY_REFERENCE_SQL = _track_statement(
    before="""k AS (
    SELECT id FROM customers_apikey WHERE key_hash = %(key_hash)s AND env = %(env)s AND revoked_at IS NULL
), c AS (
    SELECT """
    + _columns("c", _CUSTOMER_COLUMNS)
    + """ FROM customers_customer c
    WHERE c.env = %(env)s AND c.customer_id = %(customer_id)s AND c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM k)
), f AS (
    SELECT """
    + _columns("f", _FEATURE_COLUMNS)
    + """ FROM billing_feature f
    WHERE f.feature_id = %(feature_id)s AND NOT f.archived AND f.type <> 'boolean'
),""",
    after=""", u AS (
    UPDATE customers_apikey SET last_used_at = %(now)s
    WHERE id = (SELECT id FROM k) AND (last_used_at IS NULL OR last_used_at <= %(last_used_before)s)
      AND EXISTS (SELECT 1 FROM b)
)""",
    customer="(SELECT id FROM c)",
    feature="(SELECT id FROM f)",
    api_key="(SELECT id FROM k)",
    columns=", ".join(
        [
            "(SELECT id FROM k)",
            _columns("c", _CUSTOMER_COLUMNS),
            _columns("f", _FEATURE_COLUMNS),
            _columns("pr", _PRICE_COLUMNS),
        ]
    ),
    joins="""CROSS JOIN c CROSS JOIN f
LEFT JOIN LATERAL (SELECT * FROM billing_price WHERE product_id = cp.product_id AND type = 'usage'
                   AND feature_id = b.feature_id ORDER BY id LIMIT 1) pr ON TRUE""",
)


def _prepared_cursor():
    """A cursor whose statements PostgreSQL plans once per connection (a server-side prepared statement).
    Planning the track statement, with its CTEs and joins, cost more than running it (~1 ms against
    ~0.7 ms); prepared, each call only binds its values. Logged like any cursor (CaptureQueriesContext)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    # As Django's own cursor(): drop a connection that failed its health check, then (re)connect.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(PreparedCursor(connection.connection))


def _track_in_one_statement(
    *,
    customer: Customer,
    feature: Feature,
    value: Decimal,
    event_name: str,
    properties: dict,
    timestamp: datetime,
    api_key: ApiKey | None,
    now: datetime,
) -> TrackResult | None:
    props = Event._meta.get_field("properties").get_db_prep_value(properties, connection)
    with _prepared_cursor() as cursor:
        cursor.execute(
            _TRACK_SQL,
            {
                "v": value,
                "floor": -MAX_ABS,
                "now": now,
                "customer": customer.pk,
                "feature": feature.pk,
                "event_name": event_name,
                "day": rollup.day_of(timestamp),
                "timestamp": timestamp,
                "properties": props,
                "api_key": api_key.pk if api_key else None,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _tracked(
        row,
        customer=customer,
        feature=feature,
        value=value,
        event_name=event_name,
        properties=properties,
        timestamp=timestamp,
        api_key_id=api_key.pk if api_key else None,
        now=now,
    )


def _tracked(
    row,
    *,
    customer: Customer,
    feature: Feature,
    value: Decimal,
    event_name: str,
    properties: dict,
    timestamp: datetime,
    api_key_id: int | None,
    now: datetime,
) -> TrackResult:
    """The result of a one-statement track from its row: event id, balance, customer product, product."""
    n_balance, n_cp, n_product = len(_BALANCE_COLUMNS), len(_CP_COLUMNS), len(_PRODUCT_COLUMNS)
    balance = _from_row(Balance, row[1 : 1 + n_balance])
    balance.customer = customer
    balance.feature = feature
    if balance.customer_product_id is not None:  # loaded here so that callers describing it need no query
        cp = _from_row(CustomerProduct, row[1 + n_balance : 1 + n_balance + n_cp])
        cp.customer = customer
        cp.product = _from_row(Product, row[1 + n_balance + n_cp : 1 + n_balance + n_cp + n_product])
        balance.customer_product = cp
    event = Event(
        id=row[0],
        customer=customer,
        feature=feature,
        event_name=event_name,
        value=value,
        timestamp=timestamp,
        properties=properties,
        idempotency_key=None,
        api_key_id=api_key_id,
        created_at=now,
    )
    event._state.adding = False
    event._state.db = connection.alias
    return TrackResult(event=event, balances=[balance])


@dataclass
class KeyedTrack:
    """A track made with `balance_track_by_key`: what it found by id, and the balance's usage price."""

    customer: Customer
    feature: Feature
    result: TrackResult
    usage_price: Price | None


def balance_track_by_key(
    *,
    key_hash: str,
    env: str,
    customer_id: str,
    feature_id: str,
    value,
    properties: dict | None = None,
    now: datetime | None = None,
) -> KeyedTrack | None:
    """`balance_track` of `value` for a caller that names the customer and feature by their ids and holds
    a secret key (the API's track): the key (active, of `env`), the live customer and the feature are
    found inside the track statement, so the whole request is one round trip on PostgreSQL.

    None when that does not apply — elsewhere than PostgreSQL, an unknown key, customer or feature, a
    boolean feature, or a track that is not the common case (see `_track_in_one_statement`): nothing was
    written, and the caller goes the general way (authenticate, look up, `balance_track`), which also
    gives the right error."""
    if connection.vendor != "postgresql":
        return None
    value = parse_quantity(value, field="value")
    now = now or timezone.now()
    properties = properties or {}
    with _prepared_cursor() as cursor:
        cursor.execute(
            _TRACK_BY_REFERENCE_SQL,
            {
                "key_hash": key_hash,
                "env": env,
                "customer_id": customer_id,
                "feature_id": feature_id,
                "v": value,
                "floor": -MAX_ABS,
                "now": now,
                "last_used_before": now - API_KEY_LAST_USED_RESOLUTION,
                "event_name": "",
                "day": rollup.day_of(now),
                "timestamp": now,
                "properties": Event._meta.get_field("properties").get_db_prep_value(properties, connection),
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    at = 1 + len(_BALANCE_COLUMNS) + len(_CP_COLUMNS) + len(_PRODUCT_COLUMNS)
    api_key_id, at = row[at], at + 1
    n_customer, n_feature = len(_CUSTOMER_COLUMNS), len(_FEATURE_COLUMNS)
    customer = _from_row(Customer, row[at : at + n_customer])
    feature = _from_row(Feature, row[at + n_customer : at + n_customer + n_feature])
    price_row = row[at + n_customer + n_feature :]
    result = _tracked(
        row,
        customer=customer,
        feature=feature,
        value=value,
        event_name="",
        properties=properties,
        timestamp=now,
        api_key_id=api_key_id,
        now=now,
    )
    return KeyedTrack(
        customer=customer,
        feature=feature,
        result=result,
        usage_price=_from_row(Price, price_row) if price_row[0] is not None else None,
    )


def _from_row(model, raw):
    """A model instance from a raw row of its concrete columns, converted as the ORM would."""
    values = []
    for f, value in zip(model._meta.concrete_fields, raw, strict=True):
        for converter in f.get_db_converters(connection) + connection.ops.get_db_converters(f):
            value = converter(value, f, connection)
        values.append(value)
    return model.from_db(connection.alias, None, values)


def _feature_balances(customer: Customer, feature: Feature):
    return Balance.objects.filter(customer=customer, feature=feature).order_by("id")


@dataclass
class FeatureBalance:
    """All of a customer's balances of one feature, added up (what check and the API report)."""

    feature: Feature
    granted: Decimal = ZERO
    remaining: Decimal = ZERO
    unlimited: bool = False
    overage_allowed: bool = False
    usage_limit: Decimal | None = None
    next_reset_at: datetime | None = None
    balances: list[Balance] = field(default_factory=list)

    @property
    def usage(self) -> Decimal:
        return self.granted - self.remaining

    @classmethod
    def of(cls, feature: Feature, balances: list[Balance]) -> FeatureBalance:
        fb = cls(feature=feature, balances=balances)
        for b in balances:
            fb.granted += b.granted
            fb.remaining += b.remaining
            fb.unlimited = fb.unlimited or b.unlimited
            fb.overage_allowed = fb.overage_allowed or b.overage_allowed
            if b.usage_limit is not None:
                fb.usage_limit = (fb.usage_limit or ZERO) + b.usage_limit
            if b.next_reset_at and (fb.next_reset_at is None or b.next_reset_at < fb.next_reset_at):
                fb.next_reset_at = b.next_reset_at
        return fb


@dataclass
class CheckResult:
    allowed: bool
    balance: FeatureBalance | None


def balance_check(
    *, customer: Customer, feature: Feature, required_balance=1, now: datetime | None = None
) -> CheckResult:
    """May the customer use `required_balance` of the feature now? Applies due resets first."""
    required = parse_quantity(required_balance, field="required_balance")
    balances_reset_due(customer=customer, now=now)
    balances = list(_feature_balances(customer, feature))
    if not balances:
        return CheckResult(allowed=False, balance=None)
    fb = FeatureBalance.of(feature, balances)
    if feature.type == FeatureType.BOOLEAN or fb.unlimited:
        allowed = True
    elif fb.overage_allowed:
        allowed = fb.usage_limit is None or fb.usage + required <= fb.usage_limit
    else:
        allowed = fb.remaining >= required
    return CheckResult(allowed=allowed, balance=fb)


# --- balance edits ------------------------------------------------------------------------------


def _adjust(
    *,
    balance: Balance,
    actor: Actor,
    reason: str,
    action: str,
    new_value,
    next_reset_at,
    expected_remaining: Decimal | None,
    now: datetime | None,
) -> Balance:
    reason = require_reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        locked = Balance.objects.select_for_update().select_related("customer", "feature").get(pk=balance.pk)
        _reset_if_due(locked, now)
        if expected_remaining is not None and locked.remaining != expected_remaining:
            raise Conflict(
                "This balance changed since you opened it (usage was tracked or someone else edited it). "
                "Check the new figures and try again.",
                code="balance_changed",
                field="new_balance",
            )
        if locked.unlimited:
            raise ServiceError("This balance is unlimited and can't be edited.", code="balance_unlimited")
        new = new_value(locked)
        if abs(new) > MAX_ABS:  # adding can leave the range every quantity is kept within
            raise ServiceError(
                f"That would make the balance {new:,f}, beyond the largest balance (±{MAX_ABS:,f}).".replace(
                    ".000000", ""
                ),
                code="invalid_input",
                field="new_balance",
            )
        if new < 0 and not locked.overage_allowed:
            raise ServiceError(
                "A negative balance is only possible where overage is allowed, and this feature doesn't allow it.",
                code="overage_not_allowed",
                field="new_balance",
            )
        if next_reset_at is not UNSET and next_reset_at is not None:
            if not locked.resets:
                raise ServiceError(
                    "This balance never resets (lifetime), so it has no reset date.",
                    code="invalid_input",
                    field="next_reset_at",
                )
            if next_reset_at <= now:
                raise ServiceError(
                    "The next reset date must be in the future.", code="invalid_input", field="next_reset_at"
                )
        before = _balance_snapshot(locked)
        locked.adjustment += new - locked.remaining  # recorded usage never changes; granted moves
        locked.remaining = new
        if next_reset_at is not UNSET and next_reset_at is not None:
            locked.next_reset_at = next_reset_at
        locked.save(update_fields=["remaining", "adjustment", "next_reset_at", "updated_at"])
        audit_record(
            actor=actor,
            action=action,
            customer=locked.customer,
            target_type="balance",
            target_id=locked.pk,
            before=before,
            after=_balance_snapshot(locked),
            reason=reason,
        )
    return locked


def balance_set(
    *,
    balance: Balance,
    new_balance,
    actor: Actor,
    reason: str,
    next_reset_at=UNSET,
    expected_remaining: Decimal | None = None,
    now: datetime | None = None,
) -> Balance:
    """Set the balance to `new_balance` (the dashboard popup and `balances.update`).

    Positive: allowance left; negative: usage to charge (overage only). Recorded as
    `adjustment += new - old`, so usage stays as recorded and granted moves.
    """
    new = parse_quantity(new_balance, field="new_balance")
    return _adjust(
        balance=balance,
        actor=actor,
        reason=reason,
        action=AuditAction.BALANCE_SET,
        new_value=lambda b: new,
        next_reset_at=next_reset_at,
        expected_remaining=expected_remaining,
        now=now,
    )


def balance_add(
    *,
    balance: Balance,
    delta,
    actor: Actor,
    reason: str,
    next_reset_at=UNSET,
    expected_remaining: Decimal | None = None,
    now: datetime | None = None,
) -> Balance:
    """Add `delta` (may be negative) to the balance: the same rule as `balance_set`."""
    amount = parse_quantity(delta, field="amount")
    return _adjust(
        balance=balance,
        actor=actor,
        reason=reason,
        action=AuditAction.BALANCE_ADD,
        new_value=lambda b: b.remaining + amount,
        next_reset_at=next_reset_at,
        expected_remaining=expected_remaining,
        now=now,
    )


@transaction.atomic
def balance_create(
    *,
    customer: Customer,
    feature: Feature,
    actor: Actor,
    granted=0,
    unlimited: bool = False,
    interval: str = Interval.LIFETIME,
    interval_count: int = 1,
    overage_allowed: bool = False,
    reason: str = "",
    now: datetime | None = None,
) -> Balance:
    """A loose grant of a feature, outside any product."""
    now = now or timezone.now()
    amount = parse_quantity(granted, field="granted", allow_negative=False)
    if interval not in Interval.values:
        raise ServiceError(f"Unknown interval {interval!r}.", code="invalid_input", field="interval")
    balance = Balance.objects.create(
        customer=customer,
        feature=feature,
        customer_product=None,
        allowance=amount,
        remaining=amount,
        unlimited=unlimited,
        overage_allowed=overage_allowed,
        interval=interval,
        interval_count=interval_count,
        next_reset_at=None if interval == Interval.LIFETIME else add_intervals(now, interval, interval_count),
    )
    audit_record(
        actor=actor,
        action=AuditAction.BALANCE_CREATE,
        customer=customer,
        target_type="balance",
        target_id=balance.pk,
        after=_balance_snapshot(balance),
        reason=reason,
    )
    return balance


# --- rewards ------------------------------------------------------------------------------------


@transaction.atomic
def reward_apply(*, customer: Customer, reward: Reward, actor: Actor, now: datetime | None = None) -> CustomerReward:
    now = now or timezone.now()
    if not reward.active:
        raise ServiceError(f"{reward.name} is not active.", code="reward_inactive", field="reward")
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    if CustomerReward.objects.filter(customer=customer, reward=reward, removed_at__isnull=True).exists():
        raise Conflict(
            f"{customer.display_name} already has {reward.name}.", code="reward_already_applied", field="reward"
        )
    expires_at = None
    if reward.duration == RewardDuration.MONTHS and reward.duration_months:
        expires_at = add_intervals(now, "month", reward.duration_months)
    applied = CustomerReward.objects.create(
        customer=customer,
        reward=reward,
        applied_at=now,
        expires_at=expires_at,
        applied_by=actor if actor is not None and not isinstance(actor, ApiKey) else None,
    )
    entry = audit_record(
        actor=actor,
        action=AuditAction.REWARD_APPLY,
        customer=customer,
        target_type="reward",
        target_id=reward.reward_id,
        after={"reward": reward.reward_id, "expires_at": expires_at},
    )
    stripe_gateway.discounts_changed(customer=customer, reward=reward, audit_entry=entry)
    return applied


@transaction.atomic
def reward_remove(*, customer_reward: CustomerReward, actor: Actor, now: datetime | None = None) -> None:
    now = now or timezone.now()
    locked = CustomerReward.objects.select_for_update().select_related("customer", "reward").get(pk=customer_reward.pk)
    if locked.removed_at is not None:
        return
    locked.removed_at = now
    locked.save(update_fields=["removed_at"])
    entry = audit_record(
        actor=actor,
        action=AuditAction.REWARD_REMOVE,
        customer=locked.customer,
        target_type="reward",
        target_id=locked.reward.reward_id,
        before={"reward": locked.reward.reward_id},
    )
    stripe_gateway.discounts_changed(customer=locked.customer, reward=locked.reward, audit_entry=entry)
