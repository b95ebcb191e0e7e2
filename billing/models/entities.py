"""A customer's entities (Autumn's sub-customers): the seats, workspaces or projects of one paying customer."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.features import Feature
from customers.models import CUSTOMER_ID_MAX_LENGTH, Customer


class EntityQuerySet(models.QuerySet):
    def alive(self) -> EntityQuerySet:
        return self.filter(deleted_at__isnull=True)


class Entity(models.Model):
    """One seat, workspace or project of a customer, counted by a continuous-use feature (`seats`): it uses one
    unit of the customer's balance of that feature while it exists. It is in its customer's environment.

    Deleting one keeps the row (deleted_at) for the audit trail and the events that name it; its id is free
    again for a new entity of the same customer, as in Autumn."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="entities")
    entity_id = models.CharField("ID", max_length=CUSTOMER_ID_MAX_LENGTH)
    name = models.CharField(max_length=255, blank=True, default="")
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="entities")
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = EntityQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "entities"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "entity_id"],
                condition=Q(deleted_at__isnull=True),
                name="entity_unique_id_per_customer",
            ),
            models.CheckConstraint(condition=~Q(entity_id=""), name="entity_id_not_empty"),
        ]
        indexes = [
            # A customer's entities, newest first (the page's card, entities.list of one customer).
            models.Index(
                fields=["customer", "-created_at", "-id"], condition=Q(deleted_at__isnull=True), name="entity_alive"
            ),
            # entities.get/update/delete without customer_id: an entity id across the environment's customers.
            models.Index(fields=["entity_id"], condition=Q(deleted_at__isnull=True), name="entity_alive_id"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.entity_id}"

    @property
    def display_name(self) -> str:
        return self.name or self.entity_id
