"""Any id a customer can have opens its own pages: the dashboard's own pages live where no id can."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from customers.models import CUSTOMER_ID_PATTERN, AuditEntry, Customer
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from tests.helpers import form_values, page_text

# The names of the dashboard's own pages, and ids that look like parts of a path.
LOOKALIKE_IDS = ["deleted", "update", "export", "exports", "deleted-customers", "-", "events", "new"]


def _routes(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def test_every_dashboard_path_under_customers_belongs_to_a_customer():
    under = [r for r in _routes(get_resolver()) if r.startswith("customers/")]

    assert "customers/" in under
    assert [r for r in under if r != "customers/" and not r.startswith("customers/<str:customer_id>/")] == []
    # The pages that used to sit there, at paths an id can't take.
    assert reverse("customers:deleted") == "/deleted-customers/"
    assert reverse("customers:restore", args=[7]) == "/deleted-customers/7/restore/"
    assert reverse("customers:export") == "/exports/customers.csv"


def test_a_dot_is_no_part_of_a_customer_id(db):
    assert not re.match(CUSTOMER_ID_PATTERN, "export.csv")
    with pytest.raises(Exception, match="only letters, digits"):
        customer_create(env="sandbox", customer_id="export.csv", actor=None)


@pytest.mark.parametrize("customer_id", LOOKALIKE_IDS)
def test_customer_with_a_lookalike_id_opens_edits_and_deletes_like_any_other(ops_client, catalogue, customer_id):
    customer = customer_create(env="sandbox", customer_id=customer_id, actor=None, name=f"Customer {customer_id}")
    page = reverse("customers:detail", args=[customer_id])

    opened = ops_client.get(page)
    assert opened.status_code == 200
    assert f"<h1>Customer {customer_id}</h1>" in page_text(opened)

    edit = reverse("customers:details-edit", args=[customer_id]) + "?field=name"
    form = ops_client.get(edit)
    assert ops_client.post(edit, form_values(form, name="Renamed")).status_code == 302
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"

    delete = reverse("customers:delete", args=[customer_id])
    response = ops_client.post(delete, {"confirm_id": customer_id, "reason": "test"})
    assert response.status_code == 302 and response.url == reverse("customers:list")
    assert Customer.objects.get(pk=customer.pk).is_deleted
    assert ops_client.get(page).status_code == 404
    deleted = page_text(ops_client.get(reverse("customers:deleted")))
    assert f'<td>Renamed</td><td class="mono">{customer_id}</td>' in deleted
    assert ops_client.post(reverse("customers:restore", args=[customer.pk])).url == page
    assert ops_client.get(page).status_code == 200
    assert list(
        AuditEntry.objects.filter(customer=customer, actor_user__isnull=False)
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["customer.update", "customer.delete", "customer.restore"]


def test_the_old_paths_of_the_dashboard_pages_are_customers_now(ops_client, catalogue):
    customer_create(env="sandbox", customer_id="deleted", actor=None, name="Del Co")

    assert "<h1>Del Co</h1>" in page_text(ops_client.get("/customers/deleted/"))
    missing = ops_client.get("/customers/export/")  # a customer that doesn't exist: the customer 404
    assert missing.status_code == 404
    assert "There is no customer with the ID export in sandbox." in re.sub(r"<[^>]+>", "", page_text(missing))


def test_deleted_list_and_export_at_their_own_paths(ops_client, customer):
    listing = page_text(ops_client.get(reverse("customers:list")))

    assert 'href="/deleted-customers/">Deleted customers</a>' in listing
    assert 'href="/exports/customers.csv"' in listing
    export = ops_client.get("/exports/customers.csv")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    assert "acme_corp" in b"".join(export.streaming_content).decode()
    assert ops_client.get("/deleted-customers/").status_code == 200


def test_api_reaches_a_customer_whose_id_is_update(db, ops, catalogue):
    customer_create(env="sandbox", customer_id="update", actor=None, name="Up Co")
    _, raw_key = api_key_create(env="sandbox", name="Backend", actor=ops)
    api, auth = Client(), {"Authorization": f"Bearer {raw_key}"}

    got = api.get("/v1/customers/update", headers=auth)
    patched = api.patch(
        "/v1/customers/update", data=json.dumps({"name": "Up Inc"}), content_type="application/json", headers=auth
    )
    # POST /v1/customers/update stays the documented update form, which names the customer in its body.
    documented = api.post(
        "/v1/customers/update",
        data=json.dumps({"customer_id": "update", "email": "a@up.test"}),
        content_type="application/json",
        headers=auth,
    )
    deleted = api.delete("/v1/customers/update", headers=auth)

    assert got.status_code == 200 and got.json()["name"] == "Up Co"
    assert patched.status_code == 200 and patched.json()["name"] == "Up Inc"
    assert documented.status_code == 200 and documented.json()["email"] == "a@up.test"
    assert deleted.status_code == 200
    assert Customer.objects.get(customer_id="update").is_deleted
    assert "/v1/customers/update" in api.get("/v1/openapi.json").json()["paths"]
    assert set(api.get("/v1/openapi.json").json()["paths"]["/v1/customers/update"]) == {"post"}
