"""Actions on a customer's balances, rewards and products, under /customers/<id>/."""

from django.urls import path

from autumn_admin.dashboard.views import billing as views

app_name = "billing"

urlpatterns = [
    path("<str:customer_id>/balances/<int:balance_pk>/edit/", views.balance_edit, name="balance-edit"),
    path("<str:customer_id>/rewards/add/", views.reward_add, name="reward-add"),
    path("<str:customer_id>/rewards/<int:cr_pk>/remove/", views.reward_remove_view, name="reward-remove"),
    path("<str:customer_id>/products/<int:cp_pk>/customize/", views.product_customize_view, name="product-customize"),
]
