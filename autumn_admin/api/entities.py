"""Entities: entities.create/get/list/update/delete, a customer's seats or workspaces in the key's environment.
Every write goes through billing/services/entities.py with the key as the actor."""

from __future__ import annotations

from django.db.models import Q
from django.http import HttpRequest
from ninja import Router

from autumn_admin.api.customers import held_products
from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404, feature_or_404, page_of
from autumn_admin.api.schemas.common import ERRORS, SuccessOut
from autumn_admin.api.schemas.entities import (
    CreateEntityParams,
    EntityListOut,
    EntityOut,
    EntityRef,
    ListEntitiesParams,
    UpdateEntityParams,
)
from autumn_admin.api.serializers.entities import entities_json, entity_json
from billing.models import Entity
from billing.services.entities import entity_create, entity_delete

router = Router(tags=["entities"])


def _entities_of(request: HttpRequest):
    """The entities (not deleted) of the live customers of the key's environment: all the API sees of entities."""
    return (
        Entity.objects.alive()
        .filter(customer__env=request.api_key.env, customer__deleted_at__isnull=True)
        .select_related("customer", "feature")
    )


def entity_or_404(request: HttpRequest, params: EntityRef) -> Entity:
    """The entity a get, update or delete names: of `customer_id` (a 404 for an unknown customer), or of the one
    customer of the key's environment that has an entity of this id."""
    entities = _entities_of(request).filter(entity_id=params.entity_id)
    if params.customer_id is not None:
        entities = entities.filter(customer=customer_or_404(request, params.customer_id))
    found = list(entities[:2])
    if not found:
        raise ApiError(404, f"Entity {params.entity_id} not found", "entity_not_found")
    if len(found) > 1:
        raise ApiError(
            400,
            f"More than one customer has an entity with ID '{params.entity_id}'. Include customer_id in the "
            "request so we know which one to use.",
            "entity_id_required",
        )
    return found[0]


@router.post(
    "/entities.create",
    response={200: EntityOut, **ERRORS},
    exclude_unset=True,
    operation_id="createEntity",
    summary="Create an entity",
)
def entities_create(request, params: CreateEntityParams):
    """A seat, workspace or project of the customer, counted by a continuous-use feature: it uses one unit of the
    customer's balance of that feature (refused when none is left and the balance allows no overage)."""
    customer = customer_or_404(request, params.customer_id)
    entity = entity_create(
        customer=customer,
        entity_id=params.entity_id,
        feature=feature_or_404(params.feature_id),
        name=params.name or "",
        actor=request.api_key,
    )
    return entity_json(entity)


@router.post(
    "/entities.get",
    response={200: EntityOut, **ERRORS},
    exclude_unset=True,
    operation_id="getEntity",
    summary="Get an entity",
)
def entities_get(request, params: EntityRef):
    return entity_json(entity_or_404(request, params))


@router.post(
    "/entities.update",
    response={200: EntityOut, **ERRORS},
    exclude_unset=True,
    operation_id="updateEntity",
    summary="Update an entity",
)
def entities_update(request, params: UpdateEntityParams):
    """Autumn's update changes only an entity's billing controls, which are not built here (refused by name):
    without them it answers the entity as it is."""
    return entity_json(entity_or_404(request, params))


@router.post(
    "/entities.delete",
    response={200: SuccessOut, **ERRORS},
    operation_id="deleteEntity",
    summary="Delete an entity",
)
def entities_delete(request, params: EntityRef):
    """The entity goes, and its unit of the feature comes back to the customer's balance."""
    entity_delete(entity=entity_or_404(request, params), actor=request.api_key)
    return {"success": True}


@router.post(
    "/entities.list",
    response={200: EntityListOut, **ERRORS},
    exclude_unset=True,
    operation_id="listEntities",
    summary="List entities",
)
def entities_list(request, params: ListEntitiesParams):
    """The entities of the key's environment (or of `customer_id`), newest first; pass next_cursor as
    start_cursor for the next page. `search` matches an entity's id or name; `plans` and
    `subscription_status`, the plans its customer holds."""
    entities = _entities_of(request)
    if params.customer_id is not None:
        entities = entities.filter(customer=customer_or_404(request, params.customer_id))
    if params.search:
        entities = entities.filter(Q(entity_id__icontains=params.search) | Q(name__icontains=params.search))
    if params.subscription_status or params.plans:
        entities = entities.filter(customer__in=held_products(params).values("customer_id"))
    page = page_of(entities, time_field="created_at", cursor=params.start_cursor, limit=params.limit)
    return {"list": entities_json(page.items), "next_cursor": page.next_cursor}
