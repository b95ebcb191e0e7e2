"""Superusers see and set up everything in Django admin; the audit trail there is read-only."""

import pytest
from django.apps import apps
from django.contrib import admin

from billing.services import balance_add
from customers.models import AuditEntry

MODELS = [m for app in ("customers", "billing") for m in apps.get_app_config(app).get_models()]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_every_model_is_in_admin(client, superuser, customer, model):
    assert model in admin.site._registry, f"{model._meta.label} has no admin"
    client.force_login(superuser)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    assert client.get(url).status_code == 200


def test_catalogue_product_page_shows_items_inline(client, superuser, catalogue):
    client.force_login(superuser)
    response = client.get(f"/admin/billing/product/{catalogue['pro'].pk}/change/")
    assert response.status_code == 200
    assert b"Product items" in response.content and b"Prices" in response.content


def test_audit_entries_are_read_only_in_admin(client, superuser, customer, catalogue):
    from billing.models import Balance

    balance_add(balance=Balance.objects.get(customer=customer, feature=catalogue["messages"]), delta=5,
                actor=superuser, reason="test")
    entry = AuditEntry.objects.get(action="balance.add")
    client.force_login(superuser)
    url = f"/admin/customers/auditentry/{entry.pk}/change/"
    response = client.get(url)
    assert response.status_code == 200
    assert b'name="reason"' not in response.content  # shown, not editable
    client.post(url, {"reason": "rewritten"})
    client.post(f"/admin/customers/auditentry/{entry.pk}/delete/", {"post": "yes"})
    entry.refresh_from_db()
    assert entry.reason == "test"
    assert client.get("/admin/customers/auditentry/add/").status_code == 403


def test_non_staff_ops_user_cannot_open_admin(client, ops):
    client.force_login(ops)
    assert client.get("/admin/").status_code == 302
