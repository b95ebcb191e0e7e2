"""A plan's free trial: attaching it starts the trial (status trialing, ending after the trial's length), once
per customer and plan; a trial that needs a card goes through Stripe Checkout with the trial passed; at the
trial's end the plan becomes active, as period ends are applied (lazily and by `reset_balances`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import CustomerProduct, Product
from billing.services.checkout import checkout_create
from billing.services.plans import (
    CHECKOUT,
    GRANT_FREE,
    NO_CHARGE,
    plan_attach,
    plan_cancel,
    plan_preview,
    plans_roll_due,
)
from customers.formatting import format_day
from customers.models import AuditEntry
from tests.helpers import page_text

T0 = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
URL = "/customers/acme_corp/"
ATTACH = URL + "products/attach/"


def _trial(product: Product, length: int = 14, unit: str = "day", card: bool = False) -> Product:
    Product.objects.filter(pk=product.pk).update(trial_length=length, trial_unit=unit, trial_card_required=card)
    product.refresh_from_db()
    return product


def _on(customer, product_id: str) -> CustomerProduct:
    return CustomerProduct.objects.exclude(status="expired").get(customer=customer, product__product_id=product_id)


def test_attaching_a_plan_with_a_trial_starts_it_trialing_until_the_trial_ends(customer, catalogue, ops):
    pro = _trial(catalogue["pro"])
    preview = plan_preview(customer=customer, product=pro, now=T0)
    assert preview.trial_ends_at == T0 + timedelta(days=14)
    assert preview.methods == [NO_CHARGE] and preview.due_today == 0  # no card needed: nothing to pay now
    assert (preview.next_invoice_at, preview.next_invoice_amount) == (T0 + timedelta(days=14), 9900)

    result = plan_attach(customer=customer, product=pro, actor=ops, now=T0, reason="Trying it")
    cp = result.customer_product
    assert (cp.status, cp.status_label, cp.trial_ends_at) == ("trialing", "Trial", T0 + timedelta(days=14))
    assert (cp.current_period_start, cp.current_period_end) == (T0, T0 + timedelta(days=14))
    assert CustomerProduct.objects.get(customer=customer, product=catalogue["free"]).status == "expired"
    entry = AuditEntry.objects.get(customer=customer, action="product.attach", target_id="pro")
    assert (entry.actor_user, entry.after["status"], entry.reason) == (ops, "trialing", "Trying it")


def test_a_trial_in_months_ends_that_many_calendar_months_later(customer, catalogue, ops):
    pro = _trial(catalogue["pro"], length=1, unit="month")
    cp = plan_attach(customer=customer, product=pro, actor=ops, now=T0).customer_product
    assert cp.trial_ends_at == datetime(2030, 4, 10, 12, 0, tzinfo=UTC)


def test_a_customer_who_had_a_trial_of_the_plan_gets_no_second_one(customer, catalogue, ops):
    pro = _trial(catalogue["pro"])
    first = plan_attach(customer=customer, product=pro, actor=ops, now=T0).customer_product
    plan_cancel(customer=customer, customer_product=first, actor=ops, when="now", now=T0 + timedelta(days=1))
    again = plan_preview(customer=customer, product=pro, now=T0 + timedelta(days=2))
    assert again.trial_ends_at is None and again.methods == [GRANT_FREE]  # a paid attach, as without a trial
    cp = plan_attach(
        customer=customer, product=pro, actor=ops, method=GRANT_FREE, reason="Back", now=T0 + timedelta(days=2)
    ).customer_product
    assert (cp.status, cp.trial_ends_at) == ("active", None)
    # A new version of the plan is the same plan: still no second trial.
    v2 = Product.objects.create(product_id="pro", name="Pro", version=2, trial_length=7, trial_unit="day")
    assert plan_preview(customer=customer, product=v2, now=T0 + timedelta(days=3)).trial_ends_at is None


def test_at_the_trial_end_the_plan_becomes_active_for_its_first_paid_period(customer, catalogue, ops):
    pro = _trial(catalogue["pro"])
    cp = plan_attach(customer=customer, product=pro, actor=ops, now=T0).customer_product
    ends = T0 + timedelta(days=14)
    assert plans_roll_due(customer=customer, now=ends - timedelta(seconds=1)) == 0
    assert plans_roll_due(customer=customer, now=ends + timedelta(hours=1)) == 1
    cp.refresh_from_db()
    assert (cp.status, cp.current_period_start, cp.current_period_end) == (
        "active",
        ends,
        datetime(2030, 4, 24, 12, 0, tzinfo=UTC),
    )
    assert cp.trial_ends_at == ends  # kept: the customer had this plan's trial
    entry = AuditEntry.objects.get(customer=customer, action="product.update", reason="Free trial ended")
    assert (entry.actor_user, entry.before["status"], entry.after["status"]) == (None, "trialing", "active")


def test_reset_balances_ends_passed_trials_in_bulk(customer, catalogue, ops):
    pro = _trial(catalogue["pro"], length=3)
    past = timezone.now() - timedelta(days=5)
    cp = plan_attach(customer=customer, product=pro, actor=ops, now=past).customer_product
    call_command("reset_balances")
    cp.refresh_from_db()
    assert cp.status == "active" and cp.current_period_start == past + timedelta(days=3)


def test_a_trial_cancelled_at_its_end_expires_then_instead_of_becoming_active(customer, catalogue, ops):
    pro = _trial(catalogue["pro"])
    cp = plan_attach(customer=customer, product=pro, actor=ops, now=T0).customer_product
    plan_cancel(customer=customer, customer_product=cp, actor=ops, when="end_of_cycle", now=T0 + timedelta(days=1))
    plans_roll_due(customer=customer, now=T0 + timedelta(days=15))
    cp.refresh_from_db()
    assert cp.status == "expired" and _on(customer, "free").status == "active"


def test_a_trial_needing_a_card_goes_to_checkout_with_the_trial_passed_to_stripe(linked, catalogue, ops, fake_stripe):
    pro = _trial(catalogue["pro"], card=True)
    result = plan_attach(customer=linked, product=pro, actor=ops)
    assert result.method == CHECKOUT and result.preview.due_today == 0
    url = checkout_create(
        customer=linked,
        product=pro,
        actor=ops,
        success_url="https://x.test/",
        cancel_url="https://x.test/",
        trial_ends_at=result.preview.trial_ends_at,
    )
    assert url.startswith("https://checkout.stripe.com/")
    [session] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert session.params["subscription_data"]["trial_period_days"] == "14"
    entry = AuditEntry.objects.get(customer=linked, action="checkout.create")
    assert entry.after["trial_ends_at"]


def test_a_trial_in_months_reaches_stripe_as_its_end(linked, catalogue, ops, fake_stripe):
    pro = _trial(catalogue["pro"], length=1, unit="month", card=True)
    preview = plan_preview(customer=linked, product=pro)
    checkout_create(
        customer=linked,
        product=pro,
        actor=ops,
        success_url="https://x.test/",
        cancel_url="https://x.test/",
        trial_ends_at=preview.trial_ends_at,
    )
    [session] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert session.params["subscription_data"]["trial_end"] == str(int(preview.trial_ends_at.timestamp()))


def test_without_a_trial_the_checkout_passes_none(linked, catalogue, ops, fake_stripe):
    preview = plan_preview(customer=linked, product=catalogue["pro"])
    assert preview.trial_ends_at is None
    checkout_create(
        customer=linked,
        product=catalogue["pro"],
        actor=ops,
        success_url="https://x.test/",
        cancel_url="https://x.test/",
    )
    [session] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert set(session.params["subscription_data"]) == {"metadata"}


def test_dashboard_attach_of_a_trial_plan_shows_trial_with_its_end_date(ops_client, customer, catalogue):
    _trial(catalogue["pro"])
    preview = page_text(ops_client.get(ATTACH, {"product": catalogue["pro"].pk}))
    assert "Pro starts with its free trial, until" in preview
    response = ops_client.post(ATTACH, {"product": catalogue["pro"].pk, "when": "now", "method": "", "reason": ""})
    assert response.status_code == 302
    cp = _on(customer, "pro")
    ends = format_day(cp.trial_ends_at)
    page = page_text(ops_client.get(URL))
    assert f"is now on Pro, on a free trial until {ends}" in page
    assert ">Trial</span>" in page and f"until {ends}" in page
    assert cp.status == "trialing" and not cp.granted_free


def test_dashboard_checkout_link_for_a_card_trial_carries_the_trial(ops_client, customer, catalogue, fake_stripe):
    _trial(catalogue["pro"], length=30, card=True)
    data = {"product": catalogue["pro"].pk, "when": "now", "method": "checkout", "reason": ""}
    response = ops_client.post(ATTACH, data)
    assert response.status_code == 200 and "https://checkout.stripe.com/c/pay/" in page_text(response)
    [session] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert session.params["subscription_data"]["trial_period_days"] == "30"


MONTHLY = {"currency": "usd", "unit_amount": 100, "product_data": {"name": "P"}, "recurring": {"interval": "month"}}


@pytest.mark.parametrize(("days", "ok"), [(0, False), (1, True), (730, True), (731, False)])
def test_the_fake_checks_a_checkout_trial_as_stripe_does(linked, catalogue, fake_stripe, days, ok):
    import stripe

    from billing.stripe_io.client import client

    params = {
        "mode": "subscription",
        "customer": linked.stripe_id,
        "success_url": "https://x.test/",
        "line_items": [{"price_data": MONTHLY, "quantity": 1}],
        "subscription_data": {"trial_period_days": days},
    }
    if ok:
        client("sandbox").v1.checkout.sessions.create(params)
    else:
        with pytest.raises(stripe.InvalidRequestError):
            client("sandbox").v1.checkout.sessions.create(params)


def test_a_trial_needing_a_card_without_stripe_is_only_granted_and_starts_no_trial(customer, catalogue, ops):
    pro = _trial(catalogue["pro"], card=True)
    preview = plan_preview(customer=customer, product=pro, now=T0)
    assert preview.methods == [GRANT_FREE] and preview.trial_ends_at is None
    cp = plan_attach(customer=customer, product=pro, actor=ops, reason="Pilot", now=T0).customer_product
    assert (cp.status, cp.trial_ends_at, cp.granted_free) == ("active", None, True)
    assert plan_preview(customer=customer, product=catalogue["scale"], now=T0).trial_ends_at is None


def test_granting_a_card_trial_plan_for_free_with_stripe_starts_no_trial(linked, catalogue, ops, fake_stripe):
    pro = _trial(catalogue["pro"], card=True)
    assert plan_preview(customer=linked, product=pro).trial_ends_at is not None
    cp = plan_attach(customer=linked, product=pro, actor=ops, method=GRANT_FREE, reason="Partner").customer_product
    assert (cp.status, cp.trial_ends_at) == ("active", None)


def test_the_demo_offers_pro_with_a_14_day_trial_that_needs_a_card(db, settings):
    settings.DEBUG = True
    call_command("demo", sandbox=3, live=0)
    pro = Product.objects.get(product_id="pro", version=1)
    assert (pro.trial_length, pro.trial_unit, pro.trial_card_required) == (14, "day", True)
    now = timezone.now()
    trials = CustomerProduct.objects.filter(status="trialing")
    assert all(cp.trial_ends_at and cp.trial_ends_at > now for cp in trials)  # a past trial would be active


def test_a_trialing_subscription_from_checkout_starts_the_trial_and_there_is_no_second(
    client, customer, catalogue, ops, settings
):
    from customers.models import Customer
    from tests.fake_stripe import WEBHOOK_SECRET, event
    from tests.test_stripe_webhooks import deliver, subscription, ts

    settings.STRIPE_TEST_WEBHOOK_SECRET = WEBHOOK_SECRET
    Customer.objects.filter(pk=customer.pk).update(stripe_id="cus_acme")
    pro = _trial(catalogue["pro"], card=True)
    trialing = subscription(status="trialing", trial_end=1_761_209_600)  # what Checkout makes with the trial
    deliver(client, event("customer.subscription.created", trialing, created=100))
    cp = CustomerProduct.objects.get(stripe_subscription_id="sub_1")
    assert (cp.product_id, cp.status, cp.status_label, cp.trial_ends_at) == (
        pro.pk,
        "trialing",
        "Trial",
        ts(1_761_209_600),
    )
    deliver(client, event("customer.subscription.updated", subscription(status="active"), created=200))
    cp.refresh_from_db()
    assert cp.status == "active"  # Stripe ended the trial: the plan is paid for
    deliver(client, event("customer.subscription.deleted", subscription(status="canceled"), created=300))
    customer.refresh_from_db()
    assert plan_preview(customer=customer, product=pro).trial_ends_at is None
