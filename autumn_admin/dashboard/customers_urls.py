from django.urls import path

from autumn_admin.dashboard.views import bulk, customer_list, customer_page, delete, details, support, usage

app_name = "customers"

# Everything under customers/<id>/ belongs to that customer: the dashboard's own pages live
# elsewhere, so any id a customer can have ("deleted", "export", "-") opens its own page.
urlpatterns = [
    path("customers/", customer_list.customer_list, name="list"),
    path("exports/customers.csv", customer_list.customer_export, name="export"),
    path("new-customer/", support.customer_create_view, name="create"),
    path("deleted-customers/", customer_list.deleted_list, name="deleted"),
    path("saved-views/", customer_list.saved_view_save, name="view-save"),
    path("saved-views/<int:pk>/delete/", customer_list.saved_view_delete_view, name="view-delete"),
    path("bulk/", bulk.bulk_action, name="bulk"),
    path("deleted-customers/<int:pk>/restore/", customer_list.customer_restore_view, name="restore"),
    path("customers/<str:customer_id>/", customer_page.customer_detail, name="detail"),
    path("customers/<str:customer_id>/usage/<str:feature_id>/", usage.usage_chart_page, name="usage"),
    path("customers/<str:customer_id>/object/", support.customer_object_view, name="object"),
    path("customers/<str:customer_id>/events/", customer_page.customer_events, name="events"),
    path("customers/<str:customer_id>/invoices/", customer_page.customer_invoices, name="invoices"),
    path("customers/<str:customer_id>/details/edit/", details.details_edit, name="details-edit"),
    path("customers/<str:customer_id>/delete/", delete.customer_delete_view, name="delete"),
]
