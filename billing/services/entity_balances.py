"""Per-entity balances: a plan item that names an entity feature ("500 messages per seat") gives each of the
customer's entities counted by that feature a balance of its own (Autumn's entity-scoped customer entitlement).

They begin when the plan is attached (one per entity the customer has then) and when an entity is created (one per
per-entity item of every live plan of the customer), reset on the item's interval like the plan's other balances,
and end with the entity (expired: gone from every read and draw, their events kept) or with the plan (deleted with
its other balances). A check or track naming the entity reads and draws them with the customer-level ones
(billing/engine/load.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    Entity,
    FeatureType,
    Interval,
    ProductItem,
    UsageType,
)
from billing.quantities import ZERO
from billing.services.balances import first_reset


def _shape(item: ProductItem) -> tuple[str, Decimal]:
    """The interval and allowance of an item's balance (a continuous-use feature's never resets)."""
    feature = item.feature
    lifetime = item.interval == Interval.LIFETIME or feature.usage_type == UsageType.CONTINUOUS_USE
    allowance = ZERO if feature.type == FeatureType.BOOLEAN else item.included
    return (Interval.LIFETIME if lifetime else item.interval), allowance


def entity_balance_create(
    cp: CustomerProduct,
    item: ProductItem,
    entity: Entity,
    *,
    now: datetime,
    carried: Decimal = ZERO,
    next_reset_at: datetime | None = None,
    earlier: list[int] | None = None,
) -> Balance:
    """The entity's balance of a per-entity item of `cp`: the item's allowance, less the usage `carried` over from
    a replaced plan; resetting with the plan's other balances of the item when there are any, else one interval
    from now."""
    interval, allowance = _shape(item)
    remaining = allowance - carried
    if remaining < 0 and not item.overage_allowed:
        remaining = ZERO
    if next_reset_at is None:
        sibling = (
            Balance.objects.filter(customer_product=cp, feature=item.feature, interval=interval)
            .exclude(next_reset_at=None)
            .order_by("id")
            .first()
        )
        next_reset_at = sibling.next_reset_at if sibling else first_reset(interval, item.interval_count, now)
    return Balance.objects.create(
        customer=cp.customer,
        feature=item.feature,
        customer_product=cp,
        entity=entity,
        allowance=allowance,
        adjustment=ZERO,
        remaining=remaining,
        unlimited=item.unlimited,
        overage_allowed=item.overage_allowed,
        usage_limit=item.usage_limit,
        interval=interval,
        interval_count=item.interval_count,
        next_reset_at=next_reset_at,
        earlier_ids=earlier or [],
        created_at=now,
    )


def plan_entity_balances_create(
    cp: CustomerProduct,
    item: ProductItem,
    *,
    now: datetime,
    carried: dict[tuple[int, int], Decimal],
    kept_resets: dict[tuple[int, str, int], datetime | None],
    earlier: dict[tuple[int, int], list[int]],
) -> None:
    """A per-entity item's balances as its plan is attached: one for each of the customer's entities counted by
    its entity feature, each less the usage that entity recorded on the replaced plan's balance of the feature."""
    interval, _ = _shape(item)
    next_reset_at = kept_resets.get((item.feature_id, interval, item.interval_count)) or first_reset(
        interval, item.interval_count, now
    )
    entities = Entity.objects.alive().filter(customer=cp.customer, feature_id=item.entity_feature_id).order_by("id")
    for entity in entities:
        key = (item.feature_id, entity.pk)
        entity_balance_create(
            cp,
            item,
            entity,
            now=now,
            carried=carried.get(key, ZERO),
            next_reset_at=next_reset_at,
            earlier=earlier.get(key),
        )


def entity_balances_start(entity: Entity, *, now: datetime) -> list[Balance]:
    """A new entity's balances: one per per-entity item counted by its feature, of every live plan of its
    customer."""
    cps = CustomerProduct.objects.filter(
        customer=entity.customer,
        status__in=LIVE_PRODUCT_STATUSES,
        product__items__entity_feature=entity.feature,
    ).distinct()
    created = []
    for cp in cps.select_related("customer").order_by("id"):
        items = ProductItem.objects.filter(product_id=cp.product_id, entity_feature=entity.feature)
        for item in items.select_related("feature").order_by("id"):
            created.append(entity_balance_create(cp, item, entity, now=now))
    return created


def entity_balances_end(entity: Entity, *, now: datetime) -> int:
    """Expire a deleted entity's balances (their events stay); returns how many."""
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    return Balance.all_objects.filter(live, entity=entity).update(expires_at=now, updated_at=now)
