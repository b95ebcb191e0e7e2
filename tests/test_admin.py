"""Superusers see and set up everything in Django admin; the audit trail there is read-only."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin

from billing.models import Balance, CustomerProduct, Feature, Price, ProductItem, Reward
from billing.services.balances import balance_add
from customers.audited_admin import AuditedAdmin
from customers.models import ApiKey, AuditEntry, Customer
from customers.services.customers import customer_create
from tests.helpers import page_text

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

    balance_add(
        balance=Balance.objects.get(customer=customer, feature=catalogue["messages"]),
        delta=5,
        actor=superuser,
        reason="test",
    )
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


# --- the admin goes through the same rules ----------------------------------------------------------


class _FormReader(HTMLParser):
    """The values a browser would submit with the admin page's change form (its submit buttons left out)."""

    def __init__(self):
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self.select: str | None = None
        self.textarea: str | None = None
        self.text = ""
        self.in_form = self.done = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id", "").endswith("_form") and not self.done:
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.append((a["name"], a.get("value") or ("on" if a.get("type") == "checkbox" else "")))
        elif tag == "select" and a.get("name"):
            self.select = a["name"]
        elif tag == "option" and self.select and "selected" in a:
            self.data.append((self.select, a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self.textarea, self.text = a["name"], ""

    def handle_data(self, data):
        if self.textarea:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form, self.done = False, True
        elif tag == "select":
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.data.append((self.textarea, self.text.lstrip("\n")))
            self.textarea = None


def form_data(response) -> dict:
    reader = _FormReader()
    reader.feed(response.content.decode())
    return dict(reader.data)


def post_change(client, url, **changes):
    """Open an admin change form, change some fields (or add ones it doesn't offer) and save it."""
    data = {**form_data(client.get(url)), **changes, "_save": "Save"}
    return client.post(url, data)


def test_every_customer_and_billing_admin_is_audited():
    for model in MODELS:
        assert isinstance(admin.site._registry[model], AuditedAdmin), model._meta.label


def test_admin_cannot_move_a_customer_undelete_it_or_relink_stripe(client, superuser, customer):
    from customers.services.customers import customer_delete

    other = customer_create(env="sandbox", customer_id="gone_co", actor=None, name="Gone Co")
    customer_delete(customer=other, actor=None)
    other.refresh_from_db()
    Customer.objects.filter(pk=customer.pk).update(stripe_id="cus_original")
    client.force_login(superuser)
    for row, deleted_at in ((customer, "2020-01-01"), (other, "")):
        url = f"/admin/customers/customer/{row.pk}/change/"
        page = client.get(url).content.decode()
        assert 'name="env"' not in page and 'name="stripe_id"' not in page and 'name="deleted_at' not in page
        response = post_change(
            client,
            url,
            env="live",
            stripe_id="cus_other",
            customer_id="stolen_id",
            deleted_at_0=deleted_at,
            deleted_at_1=deleted_at and "00:00:00",
        )
        assert response.status_code == 302
    customer.refresh_from_db()
    other_after = Customer.objects.get(pk=other.pk)
    assert (customer.env, customer.customer_id, customer.stripe_id, customer.deleted_at) == (
        "sandbox",
        "acme_corp",
        "cus_original",
        None,
    )
    assert (other_after.env, other_after.deleted_at) == ("sandbox", other.deleted_at)
    assert not AuditEntry.objects.filter(actor_user=superuser).exists()  # nothing that may change did
    assert client.get("/admin/customers/customer/add/").status_code == 403
    client.post(f"/admin/customers/customer/{customer.pk}/delete/", {"post": "yes"})
    assert Customer.objects.filter(pk=customer.pk, deleted_at__isnull=True).exists()


def test_admin_edit_of_a_customer_name_goes_through_the_service_and_is_audited(
    client, superuser, linked, fake_stripe, django_capture_on_commit_callbacks
):
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_change(client, f"/admin/customers/customer/{linked.pk}/change/", name="Acme Inc")
    assert response.status_code == 302
    linked.refresh_from_db()
    assert linked.name == "Acme Inc"
    entry = AuditEntry.objects.get(action="customer.update", customer=linked)
    assert (entry.actor_user, entry.actor_label, entry.reason) == (superuser, "root_admin", "Django admin")
    assert (entry.before, entry.after, entry.env) == ({"name": "Acme Corp"}, {"name": "Acme Inc"}, "sandbox")
    assert fake_stripe.customers[linked.stripe_id]["name"] == "Acme Inc"  # pushed like a dashboard edit


def test_admin_refuses_customer_details_the_service_refuses(client, superuser, customer):
    client.force_login(superuser)
    response = post_change(
        client, f"/admin/customers/customer/{customer.pk}/change/", email="not-an-email", name="Acme Inc"
    )
    assert response.status_code == 200
    assert "is not a valid email address" in page_text(response)
    customer.refresh_from_db()
    assert (customer.name, customer.email) == ("Acme Corp", "ada@acme.test")
    assert not AuditEntry.objects.filter(actor_user=superuser).exists()


def test_admin_cannot_unrevoke_an_api_key_or_move_it(client, superuser, ops):
    from customers.services.api_keys import api_key_create, api_key_revoke

    key, _raw = api_key_create(env="sandbox", name="Backend", actor=ops)
    api_key_revoke(api_key=key, actor=ops)
    key.refresh_from_db()
    client.force_login(superuser)
    url = f"/admin/customers/apikey/{key.pk}/change/"
    response = post_change(
        client,
        url,
        name="Old backend",
        revoked_at_0="",
        revoked_at_1="",
        env="live",
        key_hash="0" * 64,
        prefix="am_sk_live_",
    )
    assert response.status_code == 302
    after = ApiKey.objects.get(pk=key.pk)
    assert (after.revoked_at, after.env, after.key_hash, after.prefix) == (
        key.revoked_at,
        "sandbox",
        key.key_hash,
        key.prefix,
    )
    assert after.name == "Old backend"
    entry = AuditEntry.objects.get(action="admin.update")
    assert (entry.actor_user, entry.target_type, entry.target_id, entry.env, entry.reason) == (
        superuser,
        "api_key",
        str(key.pk),
        "sandbox",
        "Django admin",
    )
    assert (entry.before, entry.after) == ({"name": "Backend"}, {"name": "Old backend"})
    client.post(f"/admin/customers/apikey/{key.pk}/delete/", {"post": "yes"})
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_admin_cannot_rebind_or_extend_a_customer_token(client, superuser, customer, other_customer, ops):
    from customers.services.api_keys import api_key_create, customer_token_mint

    secret, _raw = api_key_create(env="sandbox", name="Backend", actor=ops)
    token = customer_token_mint(customer=customer, actor=secret)["access"]
    client.force_login(superuser)
    response = post_change(
        client,
        f"/admin/customers/apikey/{token.pk}/change/",
        name=token.name,
        kind="secret",
        customer=str(other_customer.pk),
        expires_at_0="2099-01-01",
        expires_at_1="00:00:00",
    )
    assert response.status_code == 302
    after = ApiKey.objects.get(pk=token.pk)
    assert (after.kind, after.customer, after.expires_at) == ("access", customer, token.expires_at)


def test_admin_cannot_edit_or_add_a_balance(client, superuser, customer, catalogue):
    balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    client.force_login(superuser)
    url = f"/admin/billing/balance/{balance.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and 'name="remaining"' not in page.content.decode()
    client.post(url, {"remaining": "999999", "allowance": "999999", "unlimited": "on", "_save": "Save"})
    after = Balance.objects.get(pk=balance.pk)
    assert (after.remaining, after.allowance, after.unlimited) == (balance.remaining, balance.allowance, False)
    assert client.get("/admin/billing/balance/add/").status_code == 403


def test_admin_cannot_change_a_customers_product_status_or_periods(client, superuser, customer, catalogue):
    attached = CustomerProduct.objects.get(customer=customer)
    client.force_login(superuser)
    url = f"/admin/billing/customerproduct/{attached.pk}/change/"
    assert 'name="status"' not in client.get(url).content.decode()
    client.post(url, {"status": "expired", "current_period_end_0": "2020-01-01", "_save": "Save"})
    after = CustomerProduct.objects.get(pk=attached.pk)
    assert (after.status, after.current_period_end) == (attached.status, attached.current_period_end)
    assert client.get("/admin/billing/customerproduct/add/").status_code == 403
    client.post(f"/admin/billing/customerproduct/{attached.pk}/delete/", {"post": "yes"})
    assert CustomerProduct.objects.filter(pk=attached.pk).exists()


def test_catalogue_edit_with_its_inlines_is_audited(client, superuser, customer, catalogue):
    pro = catalogue["pro"]
    messages_item = ProductItem.objects.get(product=pro, feature=catalogue["messages"])
    price = Price.objects.get(product=pro)
    client.force_login(superuser)
    url = f"/admin/billing/product/{pro.pk}/change/"
    data = form_data(client.get(url))
    item_prefix = next(
        k[: -len("-id")]
        for k, v in data.items()
        if k.startswith("items-") and k.endswith("-id") and v == str(messages_item.pk)
    )
    price_prefix = next(
        k[: -len("-id")]
        for k, v in data.items()
        if k.startswith("prices-") and k.endswith("-id") and v == str(price.pk)
    )
    response = post_change(
        client,
        url,
        name="Pro 2025",
        custom_for=str(customer.pk),
        **{f"{item_prefix}-included": "6000", f"{price_prefix}-DELETE": "on"},
    )
    assert response.status_code == 302, page_text(response)

    pro.refresh_from_db()
    assert (pro.name, pro.custom_for) == ("Pro 2025", None)
    entries = {(e.action, e.target_type): e for e in AuditEntry.objects.filter(actor_user=superuser)}
    assert set(entries) == {("admin.update", "product"), ("admin.update", "productitem"), ("admin.delete", "price")}
    product_entry = entries["admin.update", "product"]
    assert (product_entry.before, product_entry.after) == ({"name": "Pro"}, {"name": "Pro 2025"})
    assert (product_entry.customer, product_entry.env, product_entry.reason) == (None, "", "Django admin")
    item_entry = entries["admin.update", "productitem"]
    assert (item_entry.target_id, item_entry.before, item_entry.after) == (
        str(messages_item.pk),
        {"included": 5000},
        {"included": 6000},
    )
    price_entry = entries["admin.delete", "price"]
    assert price_entry.target_id == str(price.pk)
    assert price_entry.before["amount"] == 9900 and price_entry.before["product"] == pro.pk
    assert not Price.objects.filter(pk=price.pk).exists()


def test_catalogue_add_and_delete_are_audited(client, superuser, db):
    client.force_login(superuser)
    response = client.post(
        "/admin/billing/feature/add/",
        {
            "feature_id": "exports",
            "name": "Exports",
            "type": "metered",
            "usage_type": "single_use",
            "event_names": "[]",
            "unit_label": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, page_text(response)
    feature = Feature.objects.get(feature_id="exports")
    created = AuditEntry.objects.get(action="admin.create")
    assert (created.actor_user, created.target_type, created.target_id, created.customer) == (
        superuser,
        "feature",
        str(feature.pk),
        None,
    )
    assert created.after["feature_id"] == "exports" and created.before is None

    client.post(f"/admin/billing/feature/{feature.pk}/delete/", {"post": "yes"})
    assert not Feature.objects.filter(pk=feature.pk).exists()
    deleted = AuditEntry.objects.get(action="admin.delete")
    assert (deleted.target_id, deleted.before["name"], deleted.after) == (str(feature.pk), "Exports", None)


def test_bulk_delete_in_admin_is_audited_per_row(client, superuser, discount_rewards):
    client.force_login(superuser)
    picked = [discount_rewards["retired"], discount_rewards["free_month"]]
    response = client.post(
        "/admin/billing/reward/",
        {"action": "delete_selected", "_selected_action": [r.pk for r in picked], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Reward.objects.filter(pk__in=[r.pk for r in picked]).exists()
    assert sorted(AuditEntry.objects.filter(action="admin.delete").values_list("target_id", flat=True)) == sorted(
        str(r.pk) for r in picked
    )


def test_admin_change_of_a_custom_product_shows_in_the_customers_activity(client, superuser, ops, customer):
    from billing.models import Product

    custom = Product.objects.create(product_id="pro", name="Pro for Acme", custom_for=customer)
    client.force_login(superuser)
    assert post_change(client, f"/admin/billing/product/{custom.pk}/change/", name="Pro (Acme)").status_code == 302
    entry = AuditEntry.objects.get(action="admin.update")
    assert (entry.customer, entry.env, entry.after) == (customer, "sandbox", {"name": "Pro (Acme)"})

    client.force_login(ops)
    text = page_text(client.get(f"/customers/{customer.customer_id}/"))
    assert "changed product (name) in Django admin" in text


# --- a credit system's schema -------------------------------------------------------------------------------


def _schema_line(credits_catalogue, feature, cost, *, line=0):
    return {
        f"credit_schema-{line}-metered_feature": str(feature.pk),
        f"credit_schema-{line}-credit_cost": str(cost),
    }


def test_a_credit_systems_schema_is_edited_inline_and_audited(client, superuser, credits_catalogue):
    from billing.models import CreditCost

    pool, seats = credits_catalogue["ai_credits"], credits_catalogue["seats"]
    client.force_login(superuser)
    url = f"/admin/billing/feature/{pool.pk}/change/"
    page = client.get(url)
    assert b"Credit schema (features that draw from this pool)" in page.content
    messages_line = CreditCost.objects.get(credit_system=pool, metered_feature=credits_catalogue["messages"])
    prefix = next(
        k[: -len("-id")] for k, v in form_data(page).items() if k.endswith("-id") and v == str(messages_line.pk)
    )
    response = post_change(
        client, url, **{f"{prefix}-credit_cost": "0.25", **_schema_line(credits_catalogue, seats, "1.5", line=2)}
    )
    assert response.status_code == 302, page_text(response)

    schema = dict(
        CreditCost.objects.filter(credit_system=pool).values_list("metered_feature__feature_id", "credit_cost")
    )
    assert schema == {"messages": Decimal("0.25"), "images": Decimal("0.6"), "seats": Decimal("1.5")}
    entries = AuditEntry.objects.filter(actor_user=superuser, target_type="creditcost").order_by("id")
    assert [(e.action, e.reason) for e in entries] == [
        ("admin.create", "Django admin"),
        ("admin.update", "Django admin"),
    ]
    created, updated = entries
    assert Decimal(str(created.after["credit_cost"])) == Decimal("1.5") and created.after["metered_feature"] == seats.pk
    assert (updated.target_id, list(updated.before), list(updated.after)) == (
        str(messages_line.pk),
        ["credit_cost"],
        ["credit_cost"],
    )
    assert (Decimal(str(updated.before["credit_cost"])), Decimal(str(updated.after["credit_cost"]))) == (
        Decimal("0.2"),
        Decimal("0.25"),
    )


@pytest.mark.parametrize(
    ("feature", "cost", "message"),
    [
        ("sso", "1", "Select a valid choice"),  # the choices offer metered features only
        ("ai_credits", "1", "Select a valid choice"),
        ("seats", "0", "must be more than 0"),
        ("seats", "-2", "must be more than 0"),
    ],
)
def test_a_bad_schema_line_is_refused_and_nothing_changes(client, superuser, credits_catalogue, feature, cost, message):
    from billing.models import CreditCost

    pool = credits_catalogue["ai_credits"]
    client.force_login(superuser)
    url = f"/admin/billing/feature/{pool.pk}/change/"
    response = post_change(client, url, **_schema_line(credits_catalogue, credits_catalogue[feature], cost, line=2))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert CreditCost.objects.filter(credit_system=pool).count() == 2
    assert not AuditEntry.objects.filter(actor_user=superuser).exists()


def test_only_credit_systems_show_a_schema(client, superuser, credits_catalogue):
    client.force_login(superuser)
    page = client.get(f"/admin/billing/feature/{credits_catalogue['messages'].pk}/change/")
    assert page.status_code == 200 and b"Credit schema" not in page.content
