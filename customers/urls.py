from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    # A customer id has no dots, so this never shadows a customer.
    path("export.csv", views.customer_export, name="export"),
    path("<str:customer_id>/", views.customer_detail, name="detail"),
    path("<str:customer_id>/events/", views.customer_events, name="events"),
    path("<str:customer_id>/invoices/", views.customer_invoices, name="invoices"),
]
