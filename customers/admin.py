from django.contrib import admin

from autumn_admin.read_only_admin import ReadOnlyAdmin
from customers.models import ApiKey, AuditEntry, Customer, IdempotencyRecord


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("customer_id", "name", "email", "env", "created_at", "deleted_at")
    list_filter = ("env", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("customer_id", "name", "email", "fingerprint")
    readonly_fields = ("created_at", "updated_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "env", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("env",)
    readonly_fields = ("prefix", "key_hash", "created_by", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False  # keys are created on the dashboard or with create_api_key, which show them once


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
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "api_key", "status_code", "created_at")
    readonly_fields = ("api_key", "key", "request_hash", "status_code", "response_body", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
