"""A customer's entities (seats, workspaces): created and deleted, each using one unit of the feature that
counts them while it exists. The unit is drawn and given back by the balance engine, as a track of 1 and of -1
(billing/services/track.py), in the same transaction as the entity and its audit entry.

Autumn's rules (its server's entity actions):
- an entity is counted by a feature that is not consumable: a continuous-use one (seats) or an on/off one; a
  single-use feature or a credit system is refused (400);
- its id is unique among the customer's entities that exist (409 `entity_already_exists`); a deleted entity's id
  may be used again;
- creating one uses a unit of the customer's balances of its feature. Autumn lets the balance go below zero
  unless a usage limit stops it; here a balance goes below zero only where it allows overage (down to its usage
  limit), so an entity that no balance covers is refused (400 `feature_limit_reached`) and nothing is written;
- a customer that holds no balance of the feature may still have entities: there is no unit to use;
- deleting one gives its unit back (never more than the balances have used);
- an entity gets its own balance of every per-entity item of its customer's live plans counted by its feature, and
  they end with it (billing/services/entity_balances.py).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import Balance, Entity, Feature, FeatureType, UsageType
from billing.services.entity_balances import entity_balances_end, entity_balances_start
from billing.services.track import balance_track
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import Customer
from customers.validation import validate_entity_id, validate_reason

NAME_MAX_LENGTH = 255


def _counting(feature: Feature) -> None:
    """Refuse a feature that can't count entities (Autumn: "consumable" features: single use, credit systems)."""
    if feature.type == FeatureType.CREDIT_SYSTEM or feature.usage_type == UsageType.SINGLE_USE:
        raise ServiceError(
            f"Feature '{feature.feature_id}' is consumable (e.g. credits, API calls). Entities can only be created "
            "for non-consumable features (e.g. seats).",
            code="invalid_inputs",
            field="feature_id",
        )


def _holds(customer: Customer, feature: Feature) -> bool:
    """Does the customer hold a balance of the feature, a unit of which an entity uses?"""
    return feature.type != FeatureType.BOOLEAN and Balance.objects.filter(customer=customer, feature=feature).exists()


def _lock_customer(customer: Customer) -> Customer:
    """The customer's row, locked: its entity changes queue here (a unique id, one unit each)."""
    locked = Customer.objects.alive().select_for_update().filter(pk=customer.pk).first()
    if locked is None:
        raise ServiceError(f"Customer {customer.customer_id} not found", code="customer_not_found", status=404)
    return locked


def _snapshot(entity: Entity) -> dict:
    return {"entity_id": entity.entity_id, "name": entity.name, "feature": entity.feature.feature_id}


def entity_create(
    *,
    customer: Customer,
    entity_id: str,
    feature: Feature,
    actor: Actor,
    name: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> Entity:
    """Create the customer's entity `entity_id`, counted by `feature`, using one unit of the customer's balance
    of it; audited. Refused with nothing written: a consumable feature, an id in use, no unit left."""
    entity_id = validate_entity_id(entity_id)
    name = (name or "").strip()
    if len(name) > NAME_MAX_LENGTH:
        raise ServiceError(
            f"An entity's name may be at most {NAME_MAX_LENGTH} characters.", code="invalid_inputs", field="name"
        )
    reason = validate_reason(reason)
    _counting(feature)
    now = now or timezone.now()
    with transaction.atomic():
        customer = _lock_customer(customer)
        if Entity.objects.alive().filter(customer=customer, entity_id=entity_id).exists():
            raise Conflict(f"Entity {entity_id} already exists", code="entity_already_exists", field="entity_id")
        entity = Entity.objects.create(
            customer=customer, entity_id=entity_id, name=name, feature=feature, created_at=now
        )
        if _holds(customer, feature):
            try:
                balance_track(
                    customer=customer,
                    feature=feature,
                    value=1,
                    actor=actor,
                    properties={"entity_id": entity_id},
                    now=now,
                    reject_uncovered=True,
                )
            except ServiceError as exc:
                if exc.code != "insufficient_balance":
                    raise
                raise ServiceError(
                    f"Cannot create entity {entity_id}: {customer.customer_id} has no {feature.name} left "
                    "(its balance allows no overage beyond this).",
                    code="feature_limit_reached",
                    field="feature_id",
                ) from None
        entity_balances_start(entity, now=now)
        audit_record(
            actor=actor,
            action=AuditAction.ENTITY_CREATE,
            customer=customer,
            target_type="entity",
            target_id=entity_id,
            after=_snapshot(entity),
            reason=reason,
        )
    return entity


def entity_delete(*, entity: Entity, actor: Actor, reason: str = "", now: datetime | None = None) -> None:
    """Delete the entity (kept as deleted, its id free again) and give its unit back; audited. An entity deleted
    meanwhile (another tab, another request) is a Conflict: nothing is given back twice."""
    reason = validate_reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        customer = _lock_customer(entity.customer)
        locked = Entity.objects.select_for_update().select_related("feature").get(pk=entity.pk)
        if locked.deleted_at is not None:
            raise Conflict(f"Entity {locked.entity_id} was already deleted.", code="entity_not_found")
        locked.deleted_at = now
        locked.save(update_fields=["deleted_at"])
        entity_balances_end(locked, now=now)
        if _holds(customer, locked.feature):
            balance_track(
                customer=customer,
                feature=locked.feature,
                value=-1,
                actor=actor,
                properties={"entity_id": locked.entity_id},
                now=now,
            )
        audit_record(
            actor=actor,
            action=AuditAction.ENTITY_DELETE,
            customer=customer,
            target_type="entity",
            target_id=locked.entity_id,
            before=_snapshot(locked),
            reason=reason,
        )
    entity.deleted_at = locked.deleted_at
