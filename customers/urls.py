from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    # Before "<customer_id>/": "deleted" is a page, not a customer id.
    path("deleted/", views.deleted_list, name="deleted"),
    path("deleted/<int:pk>/restore/", views.customer_restore_view, name="restore"),
    path("<str:customer_id>/", views.customer_detail, name="detail"),
    path("<str:customer_id>/details/edit/", views.details_edit, name="details-edit"),
    path("<str:customer_id>/delete/", views.customer_delete_view, name="delete"),
]
