"""Settings → Delete, Deleted customers → Restore, and the purge — through the test client."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from billing.models import Balance, CustomerProduct, CustomerReward, Event, Invoice
from billing.services.balances import balance_set
from billing.services.products import product_attach
from billing.services.rewards import reward_apply
from billing.services.track import balance_track
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_create, customer_delete
from tests.helpers import page_text

DELETE = "/customers/acme_corp/delete/"


@pytest.fixture
def busy_customer(customer, catalogue, discount_rewards, ops):
    """Acme with a second product, usage, an edit, a reward and invoices: everything a delete touches."""
    product_attach(customer=customer, product=catalogue["seats_addon"], actor=ops)
    for _ in range(3):
        balance_track(customer=customer, feature=catalogue["messages"], value=5, actor=None)
    balance_set(
        balance=Balance.objects.get(customer=customer, feature=catalogue["messages"]),
        new_balance=200,
        actor=ops,
        reason="goodwill",
    )
    reward_apply(customer=customer, reward=discount_rewards["twenty"], actor=ops)
    Invoice.objects.create(customer=customer, stripe_id="in_1", status="paid", total=9900, amount_paid=9900)
    Invoice.objects.create(customer=customer, stripe_id="in_2", status="open", total=9900)
    return customer


def snapshot(customer) -> dict:
    return {
        "products": sorted(
            CustomerProduct.objects.filter(customer=customer).values_list("product__product_id", "status")
        ),
        "balances": sorted(
            Balance.objects.filter(customer=customer).values_list(
                "feature__feature_id", "allowance", "adjustment", "remaining"
            )
        ),
        "events": Event.objects.filter(customer=customer).count(),
        "invoices": sorted(Invoice.objects.filter(customer=customer).values_list("stripe_id", "total")),
        "rewards": list(
            CustomerReward.objects.filter(customer=customer).values_list("reward__reward_id", "removed_at")
        ),
        "details": Customer.objects.filter(pk=customer.pk).values("customer_id", "name", "email", "metadata").get(),
    }


def test_delete_confirmation_lists_what_goes_and_says_stripe_is_untouched(ops_client, busy_customer):
    response = ops_client.get(DELETE)

    html = page_text(response)
    assert response.status_code == 200
    for count in (
        "<strong>2</strong> active products",
        "<strong>2</strong> feature balances",
        "<strong>3</strong> events",
        "<strong>2</strong> invoices",
    ):
        assert count in html
    assert "This does not delete the customer in Stripe." in html
    assert "Type acme_corp to confirm" in html.replace('<span class="mono">', "").replace("</span>", "")


@pytest.mark.parametrize("typed", ["", "acme", "ACME_CORP", "globex"])
def test_delete_needs_the_customer_id_typed_exactly(ops_client, customer, typed):
    response = ops_client.post(DELETE, {"confirm_id": typed})

    assert response.status_code == 422 and "Type acme_corp exactly to confirm." in page_text(response)
    customer.refresh_from_db()
    assert customer.deleted_at is None
    assert not AuditEntry.objects.filter(action="customer.delete").exists()


def test_delete_is_soft_and_the_customer_leaves_lists_and_pages(ops_client, ops, busy_customer):
    response = ops_client.post(DELETE, {"confirm_id": "acme_corp", "reason": "asked to close account"})

    assert response.status_code == 302 and response.url == "/customers/"
    busy_customer.refresh_from_db()
    assert busy_customer.deleted_at is not None and busy_customer.deleted_by == ops
    entry = AuditEntry.objects.get(action="customer.delete")
    assert entry.actor_user == ops and entry.reason == "asked to close account"
    listing = page_text(ops_client.get("/customers/"))
    assert "Deleted Acme Corp (acme_corp)." in listing  # the message after the redirect
    assert 'href="/customers/acme_corp/"' not in listing
    assert ops_client.get("/customers/acme_corp/").status_code == 404
    deleted = page_text(ops_client.get(reverse("customers:deleted")))
    assert "acme_corp" in deleted and "olivia_ops" in deleted and ">Restore</button>" in deleted


def test_delete_with_htmx_sends_the_browser_to_the_list(ops_client, customer):
    response = ops_client.post(DELETE, {"confirm_id": "acme_corp"}, HTTP_HX_REQUEST="true")

    assert response.headers["HX-Redirect"] == "/customers/"


def test_delete_then_restore_loses_nothing(ops_client, ops, busy_customer):
    before = snapshot(busy_customer)
    ops_client.post(DELETE, {"confirm_id": "acme_corp"})

    response = ops_client.post(reverse("customers:restore", args=[busy_customer.pk]))

    assert response.status_code == 302 and response.url == "/customers/acme_corp/"
    busy_customer.refresh_from_db()
    assert busy_customer.deleted_at is None
    assert snapshot(busy_customer) == before
    assert ops_client.get("/customers/acme_corp/").status_code == 200
    assert AuditEntry.objects.filter(action="customer.restore", actor_user=ops).exists()
    assert "acme_corp" not in page_text(ops_client.get(reverse("customers:deleted")))


def test_restore_refused_while_another_customer_has_the_id(ops_client, customer):
    customer_delete(customer=customer, actor=None)
    customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="New Acme")

    response = ops_client.post(reverse("customers:restore", args=[customer.pk]))

    assert response.status_code == 409
    assert "Another customer now has the id 'acme_corp'" in page_text(response)
    customer.refresh_from_db()
    assert customer.deleted_at is not None


def test_deleted_customers_of_the_other_environment_are_not_listed_or_restorable(ops_client, catalogue):
    live = customer_create(env="live", customer_id="live_co", actor=None)
    customer_delete(customer=live, actor=None)

    assert "live_co" not in page_text(ops_client.get(reverse("customers:deleted")))
    assert ops_client.post(reverse("customers:restore", args=[live.pk])).status_code == 404
    live.refresh_from_db()
    assert live.deleted_at is not None


def test_restore_of_a_live_customer_is_not_found(ops_client, customer):
    assert ops_client.post(reverse("customers:restore", args=[customer.pk])).status_code == 404


# --- purge -----------------------------------------------------------------------------------------------


def test_purge_removes_old_deleted_customers_for_good_and_keeps_the_audit_trail(busy_customer, catalogue, capsys):
    recent = customer_create(env="sandbox", customer_id="recent", actor=None)
    alive = customer_create(env="sandbox", customer_id="alive", actor=None)
    customer_delete(customer=busy_customer, actor=None, now=timezone.now() - timedelta(days=31))
    customer_delete(customer=recent, actor=None, now=timezone.now() - timedelta(days=10))
    trail = AuditEntry.objects.filter(customer=busy_customer).count()

    call_command("purge_deleted_customers", "--older-than", "30d")

    assert "Purged 1 customer deleted before" in capsys.readouterr().out
    assert not Customer.objects.filter(pk=busy_customer.pk).exists()
    assert not Balance.objects.filter(customer_id=busy_customer.pk).exists()
    assert not Event.objects.filter(customer_id=busy_customer.pk).exists()
    assert Customer.objects.filter(pk__in=[recent.pk, alive.pk]).count() == 2
    kept = AuditEntry.objects.filter(customer_ref="acme_corp")
    assert kept.count() == trail + 1  # every earlier entry, plus the purge itself
    assert kept.get(action="customer.purge").before["name"] == "Acme Corp"
    assert set(kept.values_list("customer", flat=True)) == {None}


def test_purge_dry_run_changes_nothing(customer, capsys):
    customer_delete(customer=customer, actor=None, now=timezone.now() - timedelta(days=40))

    call_command("purge_deleted_customers", "--older-than", "30d", "--dry-run")

    assert "Would purge 1 customer" in capsys.readouterr().out
    assert Customer.objects.filter(pk=customer.pk).exists()


@pytest.mark.parametrize("age", ["30", "thirty days", "30y", "-3d", ""])
def test_purge_refuses_an_unreadable_age(customer, age):
    customer_delete(customer=customer, actor=None, now=timezone.now() - timedelta(days=400))

    with pytest.raises(CommandError, match="--older-than takes a number and a unit"):
        call_command("purge_deleted_customers", f"--older-than={age}")
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_purge_of_a_customer_with_a_custom_product(customer, catalogue, ops):
    from billing.models import Product
    from billing.services.products import product_customize

    cp = CustomerProduct.objects.get(customer=customer, status="active")
    product_customize(
        customer=customer,
        customer_product=cp,
        actor=ops,
        reason="deal",
        items=[{"feature": catalogue["messages"], "included": Decimal(999)}],
    )
    customer_delete(customer=customer, actor=None, now=timezone.now() - timedelta(days=31))

    call_command("purge_deleted_customers", "--older-than", "30d")

    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not Product.objects.filter(custom_for_id=customer.pk).exists()
    assert Product.objects.filter(product_id="free", custom_for__isnull=True).exists()
