from django.urls import path

from autumn_admin.dashboard.views import customers as views

app_name = "customers"

# Everything under customers/<id>/ belongs to that customer: the dashboard's own pages live
# elsewhere, so any id a customer can have ("deleted", "export", "-") opens its own page.
urlpatterns = [
    path("customers/", views.customer_list, name="list"),
    path("exports/customers.csv", views.customer_export, name="export"),
    path("deleted-customers/", views.deleted_list, name="deleted"),
    path("deleted-customers/<int:pk>/restore/", views.customer_restore_view, name="restore"),
    path("customers/<str:customer_id>/", views.customer_detail, name="detail"),
    path("customers/<str:customer_id>/events/", views.customer_events, name="events"),
    path("customers/<str:customer_id>/invoices/", views.customer_invoices, name="invoices"),
    path("customers/<str:customer_id>/details/edit/", views.details_edit, name="details-edit"),
    path("customers/<str:customer_id>/delete/", views.customer_delete_view, name="delete"),
]
