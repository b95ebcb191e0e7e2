"""Actions on a customer's balances, rewards and products, under /customers/<id>/."""

from django.urls import path

from autumn_admin.dashboard.views import balances, entities, invoices, plans, products, rewards, support

app_name = "billing"

urlpatterns = [
    path("<str:customer_id>/balances/<int:balance_pk>/edit/", balances.balance_edit, name="balance-edit"),
    path("<str:customer_id>/balances/create/", balances.balance_create_view, name="balance-create"),
    path("<str:customer_id>/balances/<int:balance_pk>/delete/", balances.balance_delete_view, name="balance-delete"),
    path("<str:customer_id>/features/<str:feature_id>/record-usage/", support.usage_record_view, name="usage-record"),
    path("<str:customer_id>/features/<str:feature_id>/check/", support.balance_check_view, name="balance-check"),
    path("<str:customer_id>/entities/create/", entities.entity_create_view, name="entity-create"),
    path("<str:customer_id>/entities/<int:entity_pk>/delete/", entities.entity_delete_view, name="entity-delete"),
    path("<str:customer_id>/invoices/<int:invoice_pk>/", invoices.invoice_detail, name="invoice-detail"),
    path("<str:customer_id>/invoices/<int:invoice_pk>/void/", invoices.invoice_void_view, name="invoice-void"),
    path("<str:customer_id>/invoices/<int:invoice_pk>/refund/", invoices.invoice_refund_view, name="invoice-refund"),
    path("<str:customer_id>/invoices/<int:invoice_pk>/credit/", invoices.invoice_credit_view, name="invoice-credit"),
    path("<str:customer_id>/rewards/add/", rewards.reward_add, name="reward-add"),
    path("<str:customer_id>/rewards/<int:cr_pk>/remove/", rewards.reward_remove_view, name="reward-remove"),
    path(
        "<str:customer_id>/products/<int:cp_pk>/customize/", products.product_customize_view, name="product-customize"
    ),
    path("<str:customer_id>/products/attach/", plans.plan_attach_view, name="plan-attach"),
    path("<str:customer_id>/products/<int:cp_pk>/cancel/", plans.plan_cancel_view, name="plan-cancel"),
    path("<str:customer_id>/products/<int:cp_pk>/uncancel/", plans.plan_uncancel_view, name="plan-uncancel"),
]
