from django.contrib import admin, messages

from billing.models import (
    HELD_PRODUCT_STATUSES,
    Balance,
    BulkJob,
    BulkJobItem,
    CreditCost,
    CreditNote,
    CustomerProduct,
    CustomerReward,
    DailyCreditDraw,
    DailyUsage,
    Entity,
    Event,
    EventIdempotencyKey,
    Feature,
    FeatureType,
    Invoice,
    InvoiceRefund,
    Price,
    Product,
    ProductItem,
    ReferralCode,
    ReferralProgram,
    ReferralRedemption,
    Reward,
    StripeEvent,
    UsageRollup,
)
from customers.audited_admin import AuditedAdmin, ReadOnlyAdmin


class CreditSchemaInline(admin.TabularInline):
    """A credit system's schema: the metered features that draw from its pool, and what one unit of each
    costs in credits (validated by CreditCost.clean: metered features only, never itself, cost above 0)."""

    model = CreditCost
    fk_name = "credit_system"
    extra = 1
    verbose_name = "feature drawing credits"
    verbose_name_plural = "Credit schema (features that draw from this pool)"


@admin.register(Feature)
class FeatureAdmin(AuditedAdmin):
    list_display = ("feature_id", "name", "type", "usage_type", "archived")
    list_filter = ("type", "archived")
    search_fields = ("feature_id", "name")
    inlines = [CreditSchemaInline]

    def get_inline_instances(self, request, obj=None):
        # The schema belongs to credit systems: it is edited once the feature is saved as one.
        if obj is None or obj.type != FeatureType.CREDIT_SYSTEM:
            return []
        return super().get_inline_instances(request, obj)


@admin.register(CreditCost)
class CreditCostAdmin(AuditedAdmin):
    list_display = ("credit_system", "metered_feature", "credit_cost")
    list_filter = ("credit_system",)
    search_fields = ("credit_system__feature_id", "metered_feature__feature_id")


def _held(product) -> bool:
    """Customers hold this version: what it gives and costs is theirs, so it is not edited in place (a change
    makes a new version: `atmn push`, `plans.update`)."""
    return product is not None and product.customer_products.filter(status__in=HELD_PRODUCT_STATUSES).exists()


class HeldVersionReadOnly:
    """An inline of a product that is read-only while customers hold the product version."""

    def has_add_permission(self, request, obj=None):
        return not _held(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _held(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _held(obj) and super().has_delete_permission(request, obj)


class ProductItemInline(HeldVersionReadOnly, admin.TabularInline):
    model = ProductItem
    extra = 1
    autocomplete_fields = ("feature", "entity_feature")


class PriceInline(HeldVersionReadOnly, admin.TabularInline):
    model = Price
    extra = 1


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    list_display = ("product_id", "name", "version", "group", "is_add_on", "is_default", "custom_for", "archived")
    list_filter = ("is_add_on", "is_default", "archived")
    search_fields = ("product_id", "name")
    inlines = [ProductItemInline, PriceInline]
    # A custom product is made for its customer on the customer page (and stays in its environment).
    readonly_fields = ("custom_for", "base_product")
    TRIAL_FIELDS = ("trial_length", "trial_unit", "trial_card_required")

    def get_readonly_fields(self, request, obj=None):
        # A held version's free trial is part of what its customers got, as its items and prices are.
        fields = super().get_readonly_fields(request, obj)
        return (*fields, *self.TRIAL_FIELDS) if obj is not None and _held(obj) else fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        product = self.get_object(request, object_id)
        if _held(product):
            messages.info(
                request,
                "Customers are on this version: its items, prices and free trial are theirs and can't be changed "
                "here. "
                "Change the plan with atmn push or plans.update, which makes a new version for new customers.",
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Reward)
class RewardAdmin(AuditedAdmin):
    list_display = ("reward_id", "name", "type", "value", "duration", "duration_months", "active")
    list_filter = ("type", "duration", "active")
    search_fields = ("reward_id", "name")


@admin.register(CustomerProduct)
class CustomerProductAdmin(ReadOnlyAdmin):
    """Attached, changed and expired on the dashboard and by Stripe's webhooks (billing/services/products.py),
    which keep the balances and the default plan in step."""

    list_display = ("customer", "product", "status", "started_at", "current_period_end", "canceled_at")
    list_filter = ("status",)
    raw_id_fields = ("customer", "product")
    search_fields = ("customer__customer_id",)


@admin.register(Balance)
class BalanceAdmin(ReadOnlyAdmin):
    """Balances are granted and changed through the dashboard and the API, where each edit is audited."""

    list_display = (
        "customer",
        "feature",
        "allowance",
        "adjustment",
        "remaining",
        "unlimited",
        "next_reset_at",
        "expires_at",
    )
    raw_id_fields = ("customer", "customer_product")
    search_fields = ("customer__customer_id", "feature__feature_id")

    def get_queryset(self, request):
        return Balance.all_objects.select_related("customer", "feature")  # expired grants are history, shown here


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The usage record: written by tracks only, which keep the graphs' daily rollup with it."""

    list_display = ("customer", "feature", "event_name", "value", "timestamp")
    raw_id_fields = ("customer",)
    search_fields = ("customer__customer_id", "event_name")
    show_full_result_count = False


@admin.register(EventIdempotencyKey)
class EventIdempotencyKeyAdmin(ReadOnlyAdmin):
    """Which event a customer's idempotency key recorded: written by tracks, dropped by event_retention."""

    list_display = ("customer", "idempotency_key", "event_id", "event_timestamp")
    raw_id_fields = ("customer",)
    search_fields = ("customer__customer_id", "idempotency_key")
    show_full_result_count = False


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdmin):
    """Computed from the events (billing/rollup.py), changed only by tracks and rebuilds."""

    list_display = ("customer", "feature", "day", "value")
    raw_id_fields = ("customer",)
    search_fields = ("customer__customer_id",)
    show_full_result_count = False


@admin.register(DailyCreditDraw)
class DailyCreditDrawAdmin(ReadOnlyAdmin):
    """Computed from the credit draws' events (billing/rollup.py), changed only by tracks and rebuilds."""

    list_display = ("customer", "credit_system", "feature", "day", "value")
    raw_id_fields = ("customer",)
    search_fields = ("customer__customer_id",)
    show_full_result_count = False


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = ("time_zone", "rebuilt_at")


@admin.register(CustomerReward)
class CustomerRewardAdmin(ReadOnlyAdmin):
    """Applied and removed on the customer page, which also sets the Stripe discounts."""

    list_display = ("customer", "reward", "applied_at", "applied_by", "expires_at", "removed_at")
    raw_id_fields = ("customer",)


@admin.register(Entity)
class EntityAdmin(ReadOnlyAdmin):
    """Read only: entities change through billing/services/entities.py (the customer page, entities.*), which
    draws and gives back their unit."""

    list_display = ("entity_id", "name", "customer", "feature", "created_at", "deleted_at")
    list_filter = ("customer__env",)
    search_fields = ("entity_id", "name", "customer__customer_id")
    list_select_related = ("customer", "feature")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Stripe's invoices, as its webhooks and `sync_stripe` record them."""

    list_display = ("stripe_id", "customer", "status", "total", "currency", "created_at")
    list_filter = ("status", "currency")
    raw_id_fields = ("customer",)
    search_fields = ("stripe_id", "customer__customer_id")


@admin.register(InvoiceRefund)
class InvoiceRefundAdmin(ReadOnlyAdmin):
    """Read only: refunds are made on the customer page (billing/services/invoices.py), in Stripe and here."""

    list_display = ("stripe_id", "invoice", "amount", "reason", "created_at")
    raw_id_fields = ("invoice",)
    search_fields = ("stripe_id", "invoice__stripe_id")


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """Read only: credit notes are issued on the customer page or with invoices.issue_credit_note."""

    list_display = ("stripe_id", "number", "invoice", "total", "reason", "status", "created_at")
    list_filter = ("status", "reason")
    raw_id_fields = ("invoice",)
    search_fields = ("stripe_id", "number", "invoice__stripe_id")


@admin.register(ReferralProgram)
class ReferralProgramAdmin(ReadOnlyAdmin):
    """Read only: programs change through referral_programs.* (billing/services/referrals.py), audited."""

    list_display = ("program_id", "env", "reward", "redeem_on", "received_by", "max_redemptions", "created_at")
    list_filter = ("env", "redeem_on", "received_by")
    search_fields = ("program_id",)


@admin.register(ReferralCode)
class ReferralCodeAdmin(ReadOnlyAdmin):
    """Read only: a customer's code is made by referrals.create_code."""

    list_display = ("code", "env", "program", "customer", "created_at")
    list_filter = ("env",)
    raw_id_fields = ("customer",)
    search_fields = ("code", "customer__customer_id")


@admin.register(ReferralRedemption)
class ReferralRedemptionAdmin(ReadOnlyAdmin):
    """Read only: redemptions are made by referrals.redeem_code and triggered by a checkout."""

    list_display = ("code", "program", "redeemer", "triggered", "referrer_applied", "redeemer_applied", "created_at")
    list_filter = ("triggered",)
    raw_id_fields = ("redeemer",)
    search_fields = ("code__code", "redeemer__customer_id")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    """The webhook events already applied: each is applied once."""

    list_display = ("event_id", "type", "env", "outcome", "created", "received_at")
    list_filter = ("env", "type")
    search_fields = ("event_id", "type")


@admin.register(ProductItem)
class ProductItemAdmin(AuditedAdmin):
    list_display = ("product", "feature", "included", "unlimited", "interval", "overage_allowed", "usage_limit")
    list_filter = ("interval", "overage_allowed", "unlimited")
    search_fields = ("product__product_id", "feature__feature_id")


@admin.register(Price)
class PriceAdmin(AuditedAdmin):
    list_display = ("product", "type", "feature", "amount", "currency", "interval", "billing_units")
    list_filter = ("type", "currency", "interval")
    search_fields = ("product__product_id",)


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdmin):
    """Bulk actions started from the customers list; their counts move only as the worker runs them."""

    list_display = ("id", "env", "action", "actor_label", "status", "total", "done", "skipped", "failed", "created_at")
    list_filter = ("env", "status", "action")


@admin.register(BulkJobItem)
class BulkJobItemAdmin(ReadOnlyAdmin):
    """One customer of a bulk job: pending, done, skipped or failed, with why."""

    list_display = ("job", "customer_ref", "status", "reason", "finished_at")
    list_filter = ("status",)
    raw_id_fields = ("job", "customer")
