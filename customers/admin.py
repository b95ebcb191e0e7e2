from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin

from customers.audited_admin import ADMIN_REASON, AuditedAdmin, ReadOnlyAdmin
from customers.errors import ServiceError
from customers.models import SEARCHED_FIELDS, ApiKey, AuditEntry, Customer, IdempotencyRecord, SavedView
from customers.services.customers import customer_update
from customers.validation import EDITABLE_FIELDS, clean_customer_fields


class CustomerAdminForm(forms.ModelForm):
    """Checks the details as the service does, so a refusal is a form error, not a failed save."""

    class Meta:
        model = Customer
        fields = EDITABLE_FIELDS

    def clean(self):
        cleaned = super().clean()
        try:
            clean_customer_fields({k: cleaned[k] for k in EDITABLE_FIELDS if k in cleaned})
        except ServiceError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


@admin.register(Customer)
class CustomerAdmin(AuditedAdmin):
    """Only the details the dashboard edits; the environment, id, Stripe link and deletion belong to
    the services. Customers are created through the dashboard or the API, and deleted on the dashboard."""

    form = CustomerAdminForm
    list_display = ("customer_id", "name", "email", "env", "created_at", "deleted_at")
    list_filter = ("env", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = SEARCHED_FIELDS
    readonly_fields = (
        "customer_id",
        "env",
        "stripe_id",
        "stripe_sync_error",
        "created_at",
        "updated_at",
        "deleted_at",
        "deleted_by",
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The dashboard's own service: its audit entry ("customer.update"), and the Stripe push of a new
        # name or email.
        changes = {k: form.cleaned_data[k] for k in form.changed_data if k in EDITABLE_FIELDS}
        customer_update(customer=obj, actor=request.user, reason=ADMIN_REASON, **changes)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    """Only the name: keys are created (shown once) and revoked on the dashboard; customers' tokens are minted,
    rotated and revoked through the API's keys.* only."""

    audit_target_type = "api_key"
    list_display = (
        "name",
        "kind",
        "prefix",
        "env",
        "customer",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("env", "kind")
    readonly_fields = (
        "env",
        "kind",
        "customer",
        "prefix",
        "key_hash",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )

    def has_add_permission(self, request):
        return False  # keys are created on the dashboard or with create_api_key, which show them once

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only: the audit trail is append-only."""

    list_display = ("created_at", "actor_label", "action", "customer_ref", "env", "target_type", "target_id", "reason")
    list_filter = ("action", "env")
    search_fields = ("customer_ref", "actor_label", "reason", "target_id")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(AuditedAdmin):
    list_display = ("key", "api_key", "status_code", "created_at")
    readonly_fields = ("api_key", "key", "request_hash", "status_code", "response_body", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# Login lockouts (django-axes): superusers see them and may clear one; clearing is audited.
@admin.register(SavedView)
class SavedViewAdmin(AuditedAdmin):
    """Named filters of the customers list; their owners make and delete them on the list."""

    list_display = ("name", "owner", "env", "shared", "query", "created_at")
    list_filter = ("env", "shared")


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AuditedAccessAttemptAdmin(AuditedAdmin, AccessAttemptAdmin):
    audit_target_type = "login_lockout"
    audit_fields = ("username", "ip_address", "failures_since_start", "attempt_time")
