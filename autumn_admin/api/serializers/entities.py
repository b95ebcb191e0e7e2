"""An entity in Autumn's shape. Entities have no balances or plans of their own yet: like Autumn's entities of a
customer's plans, each shows its customer's subscriptions, purchases, balances and flags."""

from __future__ import annotations

from billing.models import Entity
from billing.shapes.customers import customer_json, entity_base_json, load_customers


def entities_json(entities: list[Entity]) -> list[dict]:
    """Full entities, their customers loaded once each (applying due period ends and resets, as customer reads do)."""
    customers = load_customers(list({e.customer_id: e.customer for e in entities}.values()))
    views = {c.pk: (c, customer_json(c)) for c in customers}
    answers = []
    for entity in entities:
        customer, view = views[entity.customer_id]
        answers.append(
            entity_base_json(entity, customer)
            | {key: view[key] for key in ("subscriptions", "purchases", "balances", "flags")}
            | {"billing_controls": {}}
        )
    return answers


def entity_json(entity: Entity) -> dict:
    return entities_json([entity])[0]
