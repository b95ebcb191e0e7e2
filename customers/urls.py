from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    # A customer id has no dots, so this never shadows a customer.
    path("export.csv", views.customer_export, name="export"),
    # Before "<customer_id>/": this page shadows a customer whose id is "deleted" (its API still works).
    path("deleted/", views.deleted_list, name="deleted"),
    path("deleted/<int:pk>/restore/", views.customer_restore_view, name="restore"),
    path("<str:customer_id>/", views.customer_detail, name="detail"),
    path("<str:customer_id>/events/", views.customer_events, name="events"),
    path("<str:customer_id>/invoices/", views.customer_invoices, name="invoices"),
    path("<str:customer_id>/details/edit/", views.details_edit, name="details-edit"),
    path("<str:customer_id>/delete/", views.customer_delete_view, name="delete"),
]
