"""A customer's entities (seats, workspaces): Create entity, and Delete entity with a reason."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from autumn_admin.dashboard.forms.entities import EntityCreateForm, EntityDeleteForm
from autumn_admin.dashboard.permissions import CREATE_ENTITY, DELETE_ENTITY, customer_for_action
from autumn_admin.dashboard.popups import popup_action
from billing.models import Entity
from billing.services.entities import entity_create, entity_delete

# The parts of the customer page an entity changes: the card, the balance of its feature, what it costs.
SECTIONS = ["entities", "features", "upcoming-invoice", "sidebar-activity"]


@require_http_methods(["GET", "POST"])
def entity_create_view(request, customer_id: str):
    customer = customer_for_action(request, customer_id, CREATE_ENTITY)
    form = EntityCreateForm(request.POST if request.method == "POST" else None)

    def create() -> str:
        data = form.cleaned_data
        entity = entity_create(
            customer=customer,
            entity_id=data["entity_id"],
            name=data["name"],
            feature=data["feature"],
            reason=data["reason"],
            actor=request.user,
        )
        return f"Created entity {entity.display_name} for {customer.display_name}."

    return popup_action(
        request, customer, form=form, act=create, template="billing/entity_create.html", context={}, sections=SECTIONS
    )


@require_http_methods(["GET", "POST"])
def entity_delete_view(request, customer_id: str, entity_pk: int):
    """GET asks (with a reason); POST deletes and gives the entity's unit back. An entity deleted meanwhile is a
    404 on GET and the service's Conflict (409) on POST."""
    customer = customer_for_action(request, customer_id, DELETE_ENTITY)
    entity = get_object_or_404(Entity.objects.select_related("feature"), pk=entity_pk, customer=customer)
    form = EntityDeleteForm(request.POST if request.method == "POST" else None)
    if request.method == "GET" and entity.deleted_at is not None:
        raise Http404("This entity was deleted.")

    def delete() -> str:
        entity_delete(entity=entity, actor=request.user, reason=form.cleaned_data["reason"])
        return f"Deleted entity {entity.display_name} of {customer.display_name}."

    return popup_action(
        request,
        customer,
        form=form,
        act=delete,
        template="billing/entity_delete.html",
        context={"entity": entity},
        sections=SECTIONS,
    )
