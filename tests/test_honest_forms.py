"""Forms that say what they need: a required reason is marked so, with one line of why; date inputs say their
time zone; a balance that never resets is called that, the same everywhere."""

from __future__ import annotations

from billing.models import Balance, CustomerProduct
from billing.services.balances import balance_create
from tests.html import element, page_of, text

WHY = "Kept in the customer's activity with your name, so whoever looks next knows why."


def test_a_required_reason_is_marked_required_with_one_line_of_why(ops_client, customer, catalogue):
    messages = Balance.objects.get(customer=customer, feature=catalogue["messages"])  # before the grant
    grant = balance_create(customer=customer, feature=catalogue["messages"], actor=None, granted=5, reason="x")
    for url in (
        "/customers/acme_corp/balances/create/",
        f"/customers/acme_corp/balances/{messages.pk}/edit/",
        f"/customers/acme_corp/balances/{grant.pk}/delete/",
    ):
        page = page_of(ops_client.get(url))
        assert "Reason (required)" in text(page), url
        assert text(element(page, "reason-why")) == WHY, url
        assert 'aria-describedby="reason-why"' in page or "balances/create" in url


def test_dates_say_their_time_zone_and_never_resets_is_one_word_everywhere(ops_client, customer, catalogue):
    grant = balance_create(customer=customer, feature=catalogue["messages"], actor=None, granted=5, reason="x")

    create = text(page_of(ops_client.get("/customers/acme_corp/balances/create/")))
    edit = text(page_of(ops_client.get(f"/customers/acme_corp/balances/{grant.pk}/edit/")))
    messages = Balance.objects.get(customer=customer, feature=catalogue["messages"], customer_product__isnull=False)
    plan_edit = text(page_of(ops_client.get(f"/customers/acme_corp/balances/{messages.pk}/edit/")))
    bulk = text(page_of(ops_client.get("/bulk/", {"scope": "all", "action": "create_balance"})))

    assert "In UTC, the app's time zone." in create and "In UTC, the app's time zone." in plan_edit
    assert "Never resets" in create and "One-off" not in create
    assert "Never resets" in edit and "lifetime" not in edit.lower()
    assert "Never resets" in bulk and "Lifetime" not in bulk and "Expires (optional, UTC)" in bulk
    cp = CustomerProduct.objects.get(customer=customer)
    customize = text(page_of(ops_client.get(f"/customers/acme_corp/products/{cp.pk}/customize/")))
    catalogue_page = text(page_of(ops_client.get("/catalogue/")))
    for page in (customize, catalogue_page):
        assert "Never resets" in page and "Lifetime" not in page and " never " not in page


def test_the_cancel_popup_dismisses_with_keep_plan(ops_client, customer, catalogue):
    cp = CustomerProduct.objects.get(customer=customer)
    page = text(page_of(ops_client.get(f"/customers/acme_corp/products/{cp.pk}/cancel/")))
    assert page.endswith("Keep plan Cancel product") and " Cancel Cancel product" not in page


def test_with_debug_on_the_login_page_names_the_demo_logins(client, ops, settings):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("ops", password="x")
    settings.DEBUG = True
    assert text(element(page_of(client.get("/login/")), "demo-logins")) == (
        "Demo logins (DEBUG is on): ops (Ops: everything); password demo ."
    ).replace(" .", ".")
    settings.DEBUG = False
    assert 'id="demo-logins"' not in page_of(client.get("/login/"))


def test_a_deleted_customers_address_says_when_and_by_whom_with_restore_for_ops(client, ops, support, customer):
    from customers.services.customers import customer_delete

    customer_delete(customer=customer, actor=ops, reason="duplicate")
    client.force_login(ops)
    response = client.get("/customers/acme_corp/")
    page = page_of(response)
    assert response.status_code == 404 and text(element(page, "h-notfound")) == "Acme Corp was deleted"
    assert text(element(page, "deleted-when")).startswith("The customer acme_corp was deleted ")
    assert text(element(page, "deleted-when")).endswith(f" by {ops.username}.")
    restored = client.post(element(page, "restore-form").split('action="')[1].split('"')[0], {"page_env": "sandbox"})
    assert restored.status_code == 302 and client.get("/customers/acme_corp/").status_code == 200

    customer_delete(customer=customer, actor=ops, reason="duplicate")
    client.force_login(support)
    page = page_of(client.get("/customers/acme_corp/"))
    assert 'id="restore-form"' not in page and "Ops can restore it from Deleted customers." in text(page)
