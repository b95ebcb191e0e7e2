"""Django admin under the dashboard's rules: every change it may still make is audited.

Fields that only a service may change are read-only in each admin (customers/admin.py, billing/admin.py);
what is left — catalogue set-up, names — writes an audit entry in the admin's own transaction, with the
admin user as actor, the changed fields before → after, and the reason "Django admin".
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from customers.audit import AuditAction, audit_record
from customers.models import Customer

ADMIN_REASON = "Django admin"


def _audited_fields(obj: models.Model, names=None) -> list[models.Field]:
    if names is not None:
        return [obj._meta.get_field(name) for name in names]
    return [
        f
        for f in obj._meta.concrete_fields
        if not getattr(f, "auto_now", False) and not isinstance(f, models.BinaryField)
    ]


def snapshot(obj: models.Model, names=None) -> dict:
    """The row's values by field name (a foreign key as the related row's id)."""
    return {f.name: f.value_from_object(obj) for f in _audited_fields(obj, names)}


def customer_of(obj: models.Model) -> Customer | None:
    """The customer a row belongs to, if any: itself, its customer, or the customer of a custom product."""
    if isinstance(obj, Customer):
        return obj
    names = {f.name for f in obj._meta.concrete_fields}
    for name in ("customer", "custom_for"):
        if name in names:
            return getattr(obj, name)
    if "product" in names and obj.product_id is not None:
        return customer_of(obj.product)
    return None


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose adds, changes and deletes (of the row and of its inlines) are audited."""

    audit_fields: tuple[str, ...] | None = None
    """The fields an entry shows; all but `auto_now` and binary ones by default."""
    audit_target_type: str | None = None
    """`target_type` of the entries; the model's name by default."""

    def get_readonly_fields(self, request, obj=None):
        # When a row was made is the record's own fact (and the admin's widget would cut its microseconds).
        readonly = list(super().get_readonly_fields(request, obj))
        if "created_at" in {f.name for f in self.model._meta.concrete_fields} and "created_at" not in readonly:
            readonly.append("created_at")
        return readonly

    def _fields_for(self, obj) -> tuple[str, ...] | None:
        return self.audit_fields if isinstance(obj, self.model) else None

    def _stored(self, obj) -> dict:
        return snapshot(type(obj)._default_manager.get(pk=obj.pk), self._fields_for(obj))

    def _audit(self, request, obj, verb: str, *, target_id, before=None, after=None) -> None:
        customer = customer_of(obj)
        env = getattr(obj, "env", None) if "env" in {f.name for f in obj._meta.concrete_fields} else None
        target_type = (self.audit_target_type if isinstance(obj, self.model) else None) or obj._meta.model_name
        audit_record(
            actor=request.user,
            action=AuditAction(f"admin.{verb}"),
            customer=customer,
            env=env,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
            reason=ADMIN_REASON,
        )

    def _audit_saved(self, request, obj, before: dict | None) -> None:
        after = self._stored(obj)  # as stored, so values compare in the database's own types
        if before is None:
            self._audit(request, obj, "create", target_id=obj.pk, after=after)
            return
        changed = [k for k in after if after[k] != before.get(k)]
        if changed:
            self._audit(
                request,
                obj,
                "update",
                target_id=obj.pk,
                before={k: before.get(k) for k in changed},
                after={k: after[k] for k in changed},
            )

    def _audit_deleted(self, request, obj) -> None:
        self._audit(request, obj, "delete", target_id=obj.pk, before=snapshot(obj, self._fields_for(obj)))

    def save_model(self, request, obj, form, change):
        before = self._stored(obj) if change and obj.pk is not None else None
        super().save_model(request, obj, form, change)
        self._audit_saved(request, obj, before)

    def delete_model(self, request, obj):
        self._audit_deleted(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._audit_deleted(request, obj)
        super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        # The inline forms have already put their new values on their instances: read the old ones.
        stored = {}
        for inline_form in formset.initial_forms:
            instance = inline_form.instance
            if instance.pk is not None and (inline_form.has_changed() or formset._should_delete_form(inline_form)):
                stored[id(instance)] = (instance.pk, self._stored(instance))
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self._audit_saved(request, obj, None)
        for obj, _fields in formset.changed_objects:
            self._audit_saved(request, obj, stored[id(obj)][1])
        for obj in formset.deleted_objects:
            pk, before = stored[id(obj)]
            self._audit(request, obj, "delete", target_id=pk, before=before)


class ReadOnlyAdmin(AuditedAdmin):
    """An admin page that shows rows and changes none: for records written only by the services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
