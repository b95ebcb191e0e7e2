"""The customer page's plan popups without JavaScript (each is a page): Attach Product with its preview,
a scheduled downgrade, Cancel and Uncancel, the checkout link; and who sees the buttons."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Balance, CustomerProduct
from billing.services.plans import GRANT_FREE, plan_attach
from billing.services.track import balance_track
from customers.models import AuditEntry
from tests.helpers import page_text, subscribe

URL = "/customers/acme_corp/"
ATTACH = URL + "products/attach/"


def _statuses(customer) -> dict[str, str]:
    cps = CustomerProduct.objects.filter(customer=customer).exclude(status="expired").select_related("product")
    return {cp.product.product_id: cp.status_label for cp in cps}


def _cp(customer, product):
    return CustomerProduct.objects.exclude(status="expired").get(customer=customer, product=product)


def test_attach_popup_previews_pro_for_a_free_customer(ops_client, customer, catalogue):
    balance_track(customer=customer, feature=catalogue["messages"], value=Decimal(40), actor=None)
    page = page_text(ops_client.get(ATTACH, {"product": catalogue["pro"].pk}))
    assert "Attach product" in page and "Takes effect now" in page
    assert "Grant for free" in page and "Stripe is not connected for sandbox" in page
    assert "no charge instead of $99.00 / month" in page  # what granting it gives away
    preview = page[page.index('class="plan-preview"') :]
    assert "Free" in preview and "Pro" in preview
    assert ">5,000<" in preview and ">40<" in preview  # messages after, and the usage carried over
    assert "Due today" in preview and "$0.00" in preview
    assert _statuses(customer) == {"free": "Active"}  # a preview changes nothing


def test_ops_grants_pro_for_free_with_a_reason_and_the_page_says_so(ops_client, customer, catalogue):
    data = {"product": catalogue["pro"].pk, "when": "now", "method": GRANT_FREE, "reason": "Design partner"}
    response = ops_client.post(ATTACH, data)
    assert response.status_code == 302
    assert _statuses(customer) == {"pro": "Active"}
    page = page_text(ops_client.get(URL))
    assert "is now on Pro for free" in page
    assert '>granted</span> <span class="muted small">free, not $99.00 / month<' in page
    assert "attached Pro (replacing Free)" in page and "Design partner" in page
    assert Balance.objects.get(customer=customer, feature=catalogue["messages"]).granted == 5000


def test_granting_without_a_reason_is_refused_and_changes_nothing(ops_client, customer, catalogue):
    before = AuditEntry.objects.count()
    response = ops_client.post(ATTACH, {"product": catalogue["pro"].pk, "when": "now", "method": GRANT_FREE})
    assert response.status_code == 422
    assert "reason" in page_text(response).lower()
    assert AuditEntry.objects.count() == before and _statuses(customer) == {"free": "Active"}


def test_a_downgrade_is_scheduled_and_the_page_shows_cancelling_and_scheduled(ops_client, customer, catalogue, ops):
    plan_attach(customer=customer, product=catalogue["scale"], actor=ops, method=GRANT_FREE, reason="Deal")
    page = page_text(ops_client.get(ATTACH, {"product": catalogue["pro"].pk}))
    assert "Attach now instead" in page and "shows Cancelling until then" in page
    data = {"product": catalogue["pro"].pk, "when": "end_of_cycle", "method": GRANT_FREE, "reason": "Cheaper"}
    assert ops_client.post(ATTACH, data).status_code == 302
    assert _statuses(customer) == {"scale": "Cancelling", "pro": "Scheduled"}
    page = page_text(ops_client.get(URL))
    assert ">Cancelling<" in page and ">Scheduled<" in page and "Uncancel" in page


def test_cancel_at_the_end_of_the_cycle_then_uncancel(ops_client, customer, catalogue, ops):
    cp = plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")
    cp = cp.customer_product
    cancel = f"{URL}products/{cp.pk}/cancel/"
    page = page_text(ops_client.get(cancel))
    assert "At the end of the billing cycle" in page and "balances run until then" in page
    now_preview = page_text(ops_client.get(cancel, {"when": "now"}))
    assert "Takes effect now" in now_preview and "Free" in now_preview  # the default plan comes back

    assert ops_client.post(cancel, {"when": "end_of_cycle", "reason": "Leaving"}).status_code == 302
    cp.refresh_from_db()
    assert cp.canceled_at is not None and _statuses(customer) == {"pro": "Cancelling"}
    assert "cancelled Pro at the end of its billing period" in page_text(ops_client.get(URL))

    uncancel = f"{URL}products/{cp.pk}/uncancel/"
    assert "renews" in page_text(ops_client.get(uncancel))
    assert ops_client.post(uncancel, {"reason": "Stayed"}).status_code == 302
    assert _statuses(customer) == {"pro": "Active"}
    assert "uncancelled Pro" in page_text(ops_client.get(URL))


def test_uncancel_of_a_product_without_a_pending_cancellation_is_refused(ops_client, customer):
    cp = CustomerProduct.objects.get(customer=customer)
    response = ops_client.post(f"{URL}products/{cp.pk}/uncancel/", {"reason": "x"})
    assert response.status_code == 422
    assert "no pending cancellation" in page_text(response)


def test_cancel_immediately_brings_the_default_plan_back(ops_client, customer, catalogue, ops):
    cp = plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")
    response = ops_client.post(f"{URL}products/{cp.customer_product.pk}/cancel/", {"when": "now", "reason": "Churn"})
    assert response.status_code == 302
    assert _statuses(customer) == {"free": "Active"}
    page = page_text(ops_client.get(URL))
    assert "Show expired (2)" in page


def test_a_paid_attach_with_stripe_answers_a_checkout_link_to_copy(ops_client, customer, catalogue, fake_stripe):
    page = page_text(ops_client.get(ATTACH, {"product": catalogue["pro"].pk}))
    assert "Send a checkout link" in page and "$99.00" in page
    data = {"product": catalogue["pro"].pk, "when": "now", "method": "checkout", "reason": ""}
    response = ops_client.post(ATTACH, data)
    assert response.status_code == 200
    page = page_text(response)
    assert "https://checkout.stripe.com/c/pay/" in page and "data-copy" in page
    assert _statuses(customer) == {"free": "Active"}  # attached once Stripe reports the payment
    assert AuditEntry.objects.filter(customer=customer, action="checkout.create").count() == 1


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_support_and_viewer_see_the_state_but_not_the_buttons(client, request, customer, catalogue, ops, role):
    cp = plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")
    client.force_login(request.getfixturevalue(role))
    page = page_text(client.get(URL))
    assert "Pro" in page and ">Active<" in page
    assert "Attach Product" not in page and "/cancel/" not in page
    assert client.get(ATTACH).status_code == 403
    assert client.post(f"{URL}products/{cp.customer_product.pk}/cancel/", {"when": "now"}).status_code == 403
    assert _statuses(customer) == {"pro": "Active"}


def test_the_page_keeps_its_query_count_whatever_the_number_of_products(ops_client, customer, catalogue, ops):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert ops_client.get(URL).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    plan_attach(customer=customer, product=catalogue["scale"], actor=ops, method=GRANT_FREE, reason="x")
    plan_attach(customer=customer, product=catalogue["seats_addon"], actor=ops, method=GRANT_FREE, reason="x")
    plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")  # scheduled
    assert _statuses(customer) == {"scale": "Cancelling", "pro": "Scheduled", "seats_addon": "Active"}
    assert count() == few


def test_a_period_end_passed_is_applied_when_the_page_is_read(ops_client, customer, catalogue, ops):
    cp = plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="x")
    cp = cp.customer_product
    CustomerProduct.objects.filter(pk=cp.pk).update(
        canceled_at=timezone.now() - timedelta(days=3), current_period_end=timezone.now() - timedelta(days=1)
    )
    assert "Show expired" in page_text(ops_client.get(URL))
    assert _statuses(customer) == {"free": "Active"}


@pytest.fixture
def subscribed(linked, catalogue, fake_stripe):
    """Acme on Pro through a Stripe subscription, halfway through its month."""
    return subscribe(linked, catalogue["pro"], fake_stripe)


def test_an_upgrade_of_a_subscription_shows_the_prorated_amount_and_updates_stripe(
    ops_client, linked, catalogue, fake_stripe, subscribed, django_capture_on_commit_callbacks
):
    page = page_text(ops_client.get(ATTACH, {"product": catalogue["scale"].pk}))
    assert "Update the Stripe subscription (charges $7" in page  # (250 − 99) for half a month
    data = {"product": catalogue["scale"].pk, "when": "now", "method": "update_subscription", "reason": "Growth"}
    with django_capture_on_commit_callbacks(execute=True):
        assert ops_client.post(ATTACH, data).status_code == 302
    assert _statuses(linked) == {"scale": "Active"}
    assert fake_stripe.subscriptions[subscribed["id"]]["last_proration_behavior"] == "always_invoice"


def test_a_stripe_failure_after_a_cancel_keeps_the_cancel_and_says_so(
    ops_client, linked, catalogue, fake_stripe, subscribed, django_capture_on_commit_callbacks
):
    fake_stripe.queue_error(400, message="No such subscription", times=5)
    cp = _cp(linked, catalogue["pro"])
    with django_capture_on_commit_callbacks(execute=True):
        response = ops_client.post(f"{URL}products/{cp.pk}/cancel/", {"when": "end_of_cycle", "reason": "Leaving"})
    assert response.status_code == 302
    assert _statuses(linked) == {"pro": "Cancelling"}  # the local change stands
    assert "Subscription not updated in Stripe" in page_text(ops_client.get(URL))


def test_the_checkout_link_from_the_dashboard_carries_the_customers_coupon(
    ops_client, customer, catalogue, fake_stripe, discount_rewards, ops
):
    from billing.services.rewards import reward_apply

    reward_apply(customer=customer, reward=discount_rewards["twenty"], actor=ops)
    data = {"product": catalogue["pro"].pk, "when": "now", "method": "checkout", "reason": ""}
    page = page_text(ops_client.post(ATTACH, data))
    assert "it carries their coupons" in page
    [session] = fake_stripe.sessions.values()
    assert session.get("discounts")
