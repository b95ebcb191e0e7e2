"""What the app sends to Stripe when something changes here, checked on the fake Stripe server."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction

from billing.models import CustomerReward, Price, Product, Reward
from billing.services.checkout import checkout_url_for
from billing.services.rewards import reward_apply, reward_remove
from billing.stripe_inbound.backfill import retry_failed_push
from billing.stripe_io.client import StripeError
from billing.stripe_io.customers import customer_delete_in_stripe
from customers.errors import ServiceError
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_update


@pytest.fixture
def twenty_off(db):
    return Reward.objects.create(
        reward_id="twenty_off",
        name="20% off for 3 months",
        type="percentage_discount",
        value=Decimal(20),
        duration="months",
        duration_months=3,
    )


def edit(customer, ops, **fields):
    customer_update(customer=customer, actor=ops, **fields)


# --- details ------------------------------------------------------------------------------------


def test_details_edit_sends_new_name_and_email_to_the_stripe_customer(
    linked, ops, fake_stripe, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="Mr New Name", email="newemail@example.com")

    [sent] = fake_stripe.requests_to("POST", f"/v1/customers/{linked.stripe_id}")
    assert sent.params == {"name": "Mr New Name", "email": "newemail@example.com"}
    audit = AuditEntry.objects.get(action="customer.update", customer=linked)
    assert sent.idempotency_key == f"customer-update-{audit.pk}"
    assert fake_stripe.customers[linked.stripe_id]["name"] == "Mr New Name"
    linked.refresh_from_db()
    assert linked.stripe_sync_error == ""


def test_push_waits_for_the_commit_and_is_dropped_with_a_rollback(
    linked, ops, fake_stripe, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        edit(linked, ops, name="Later")
    assert fake_stripe.requests == []  # nothing sent while the change was uncommitted
    assert len(callbacks) == 1

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            edit(linked, ops, name="Rolled back")
            raise RuntimeError("the surrounding work failed")
    assert fake_stripe.requests == []


def test_edits_that_stripe_does_not_hold_or_unlinked_customers_send_nothing(
    customer, linked, ops, fake_stripe, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, fingerprint="device-42", metadata={"plan_tier": "gold"})
        Customer.objects.filter(pk=linked.pk).update(stripe_id="")
        linked.refresh_from_db()
        edit(linked, ops, name="Unlinked Name")
    assert fake_stripe.requests == []


def test_without_a_stripe_key_nothing_is_called(
    linked, ops, twenty_off, fake_stripe, settings, django_capture_on_commit_callbacks
):
    settings.STRIPE_TEST_SECRET_KEY = ""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        edit(linked, ops, name="Offline Name")
        reward_apply(customer=linked, reward=twenty_off, actor=ops)
    assert callbacks == []
    assert fake_stripe.requests == []
    with pytest.raises(StripeError, match="not connected"):
        customer_delete_in_stripe(customer=linked)
    linked.refresh_from_db()
    assert linked.name == "Offline Name" and linked.stripe_id and linked.stripe_sync_error == ""


@pytest.mark.django_db(transaction=True)
def test_stripe_is_called_after_the_commit_with_no_row_locked(catalogue, fake_stripe):
    """Another connection, from the fake server's thread, already sees the committed name and can lock the row."""
    from customers.services.customers import customer_create

    customer = customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme Corp")
    Customer.objects.filter(pk=customer.pk).update(stripe_id=fake_stripe.add_customer()["id"])
    customer.refresh_from_db()
    seen = []

    def probe(request):
        try:
            with transaction.atomic():
                rows = Customer.objects.filter(pk=customer.pk)
                if connection.features.has_select_for_update_nowait:
                    rows = rows.select_for_update(nowait=True)
                seen.append(rows.get().name)
        finally:
            connection.close()

    fake_stripe.on_request = probe
    customer_update(customer=customer, actor=None, name="Committed Name")
    assert seen == ["Committed Name"]


# --- failures -----------------------------------------------------------------------------------


def test_a_5xx_is_retried_with_the_same_idempotency_key(linked, ops, fake_stripe, django_capture_on_commit_callbacks):
    fake_stripe.queue_error(500)
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="Retried Name")

    first, second = fake_stripe.requests_to("POST", f"/v1/customers/{linked.stripe_id}")
    assert first.fault == "error 500" and second.fault == ""
    assert first.idempotency_key == second.idempotency_key
    assert fake_stripe.customers[linked.stripe_id]["name"] == "Retried Name"
    linked.refresh_from_db()
    assert linked.stripe_sync_error == ""


def test_stripe_failing_keeps_the_local_edit_and_tells_the_person_until_the_next_success(
    linked, ops, fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.queue_error(503, times=3)
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="Saved Here")

    assert len(fake_stripe.requests) == 3  # one try and two retries
    linked.refresh_from_db()
    assert linked.name == "Saved Here"
    assert linked.stripe_sync_error == ("Name and email not sent to Stripe: Stripe had an error (HTTP 503); try again.")
    assert fake_stripe.customers[linked.stripe_id]["name"] == "Acme Corp"

    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="Saved Everywhere")
    linked.refresh_from_db()
    assert linked.stripe_sync_error == ""
    assert fake_stripe.customers[linked.stripe_id]["name"] == "Saved Everywhere"


def test_a_4xx_is_not_retried_and_stripes_reason_is_shown(linked, ops, fake_stripe, django_capture_on_commit_callbacks):
    fake_stripe.queue_error(400, message="Invalid email address: newemail@example.com", code="email_invalid")
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, email="newemail@example.com")

    assert len(fake_stripe.requests) == 1
    linked.refresh_from_db()
    assert linked.email == "newemail@example.com"
    assert linked.stripe_sync_error == (
        "Name and email not sent to Stripe: Stripe refused the request: Invalid email address: newemail@example.com"
    )


def test_a_refused_api_key_is_reported(linked, ops, fake_stripe, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_revoked"
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="New Name")
    linked.refresh_from_db()
    assert linked.stripe_sync_error == (
        "Name and email not sent to Stripe: Stripe refused the API key; check STRIPE_TEST_SECRET_KEY."
    )


def test_time_outs_are_retried_then_reported(linked, ops, fake_stripe, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_TIMEOUT = 0.3
    fake_stripe.queue_delay(1.0, times=3)
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="Slow Name")

    sent = fake_stripe.requests_to("POST", f"/v1/customers/{linked.stripe_id}")
    assert len(sent) == 3 and len({r.idempotency_key for r in sent}) == 1
    linked.refresh_from_db()
    assert linked.name == "Slow Name"
    assert linked.stripe_sync_error == (
        "Name and email not sent to Stripe: Stripe did not answer in time or could not be reached; try again."
    )


# --- coupons ------------------------------------------------------------------------------------


def test_add_coupon_creates_the_stripe_coupon_and_puts_it_on_the_customers_subscriptions(
    linked, ops, twenty_off, fake_stripe, django_capture_on_commit_callbacks
):
    sub = fake_stripe.add_subscription(customer=linked.stripe_id, product_id="pro")
    fake_stripe.add_subscription(customer=linked.stripe_id, status="canceled")
    with django_capture_on_commit_callbacks(execute=True):
        applied = reward_apply(customer=linked, reward=twenty_off, actor=ops)

    [created] = fake_stripe.requests_to("POST", "/v1/coupons")
    assert created.params == {
        "percent_off": "20",
        "duration": "repeating",
        "duration_in_months": "3",
        "name": "20% off for 3 months",
        "metadata": {"reward_id": "twenty_off"},
    }
    twenty_off.refresh_from_db()
    assert twenty_off.stripe_coupon_id == next(iter(fake_stripe.coupons))
    [listed] = fake_stripe.requests_to("GET", "/v1/subscriptions")
    assert listed.query == {"customer": linked.stripe_id, "limit": "100"}
    [updated] = fake_stripe.requests_to("POST", "/v1/subscriptions/*")
    assert updated.path == f"/v1/subscriptions/{sub['id']}"
    assert updated.params == {"discounts": [{"coupon": twenty_off.stripe_coupon_id}]}
    audit = AuditEntry.objects.get(action="reward.apply")
    assert updated.idempotency_key == f"rewards-{audit.pk}-{sub['id']}"
    assert fake_stripe.subscriptions[sub["id"]]["discount_coupons"] == [twenty_off.stripe_coupon_id]
    applied.refresh_from_db()
    assert applied.stripe_synced_at is not None


def test_a_reward_with_a_coupon_is_not_created_again(
    linked, other_customer, ops, twenty_off, catalogue, fake_stripe, django_capture_on_commit_callbacks
):
    Customer.objects.filter(pk=other_customer.pk).update(stripe_id=fake_stripe.add_customer()["id"])
    other_customer.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        reward_apply(customer=linked, reward=twenty_off, actor=ops)
    with django_capture_on_commit_callbacks(execute=True):
        reward_apply(customer=other_customer, reward=twenty_off, actor=ops)
    assert len(fake_stripe.requests_to("POST", "/v1/coupons")) == 1
    assert len(fake_stripe.coupons) == 1


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"type": "fixed_discount", "value": Decimal(500), "currency": "eur", "duration": "forever"},
            {"amount_off": "500", "currency": "eur", "duration": "forever"},
        ),
        (
            {"type": "percentage_discount", "value": Decimal("12.5"), "duration": "one_off"},
            {"percent_off": "12.5", "duration": "once"},
        ),
    ],
)
def test_coupon_amounts_and_durations_follow_the_reward(
    linked, ops, fake_stripe, fields, expected, django_capture_on_commit_callbacks
):
    reward = Reward.objects.create(reward_id="launch", name="Launch offer", **fields)
    with django_capture_on_commit_callbacks(execute=True):
        reward_apply(customer=linked, reward=reward, actor=ops)
    [created] = fake_stripe.requests_to("POST", "/v1/coupons")
    assert created.params == {**expected, "name": "Launch offer", "metadata": {"reward_id": "launch"}}


def test_removing_the_coupon_clears_it_from_the_subscriptions(
    linked, ops, twenty_off, fake_stripe, django_capture_on_commit_callbacks
):
    sub = fake_stripe.add_subscription(customer=linked.stripe_id)
    with django_capture_on_commit_callbacks(execute=True):
        applied = reward_apply(customer=linked, reward=twenty_off, actor=ops)
    with django_capture_on_commit_callbacks(execute=True):
        reward_remove(customer_reward=applied, actor=ops)
    *_, cleared = fake_stripe.requests_to("POST", f"/v1/subscriptions/{sub['id']}")
    assert cleared.params == {"discounts": ""}
    assert fake_stripe.subscriptions[sub["id"]]["discount_coupons"] == []


def test_non_discount_rewards_send_nothing(linked, ops, catalogue, fake_stripe, django_capture_on_commit_callbacks):
    grant = Reward.objects.create(
        reward_id="bonus",
        name="Bonus messages",
        type="feature_grant",
        value=Decimal(100),
        grant_feature=catalogue["messages"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        reward_apply(customer=linked, reward=grant, actor=ops)
    assert fake_stripe.requests == []


def test_coupon_creation_failing_stores_nothing_and_tells_the_person(
    linked, ops, twenty_off, fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.add_subscription(customer=linked.stripe_id)
    fake_stripe.queue_error(500, times=3)
    with django_capture_on_commit_callbacks(execute=True):
        applied = reward_apply(customer=linked, reward=twenty_off, actor=ops)

    twenty_off.refresh_from_db()
    applied.refresh_from_db()
    linked.refresh_from_db()
    assert twenty_off.stripe_coupon_id == "" and fake_stripe.coupons == {}
    assert applied.stripe_synced_at is None and applied.removed_at is None  # the reward stays applied here
    assert linked.stripe_sync_error.startswith("Coupons not updated in Stripe: Stripe had an error (HTTP 500)")
    assert fake_stripe.requests_to("POST", "/v1/subscriptions/*") == []


def test_a_lost_answer_to_coupon_creation_creates_one_coupon_only(
    linked, ops, twenty_off, fake_stripe, settings, django_capture_on_commit_callbacks
):
    """Stripe did the work but the answer never came: the retry, with the same key, gets the same coupon."""
    settings.STRIPE_TIMEOUT = 0.3
    fake_stripe.queue_delay(1.0)
    with django_capture_on_commit_callbacks(execute=True):
        reward_apply(customer=linked, reward=twenty_off, actor=ops)
    attempts = fake_stripe.requests_to("POST", "/v1/coupons")
    assert len(attempts) == 2 and attempts[0].idempotency_key == attempts[1].idempotency_key
    assert len(fake_stripe.coupons) == 1
    twenty_off.refresh_from_db()
    assert twenty_off.stripe_coupon_id == next(iter(fake_stripe.coupons))


# --- checkout -----------------------------------------------------------------------------------

URLS = {"success_url": "https://app.example.test/billing/done", "cancel_url": "https://app.example.test/pricing"}


def test_checkout_creates_the_stripe_customer_and_a_subscription_session_with_the_discount(
    customer, ops, catalogue, twenty_off, fake_stripe, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reward_apply(customer=customer, reward=twenty_off, actor=ops)  # not linked yet: nothing sent
    assert fake_stripe.requests == []

    url = checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)

    [made] = fake_stripe.requests_to("POST", "/v1/customers")
    assert made.params == {
        "name": "Acme Corp",
        "email": "ada@acme.test",
        "metadata": {"customer_id": "acme_corp", "env": "sandbox"},
    }
    customer.refresh_from_db()
    assert customer.stripe_id in fake_stripe.customers
    link = AuditEntry.objects.get(action="customer.stripe_link")
    assert link.after == {"stripe_id": customer.stripe_id} and link.actor_label == "system"

    [session] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    metadata = {"customer_id": "acme_corp", "env": "sandbox", "product_id": "pro", "product_version": "1"}
    assert session.params == {
        "mode": "subscription",
        "customer": customer.stripe_id,
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "9900",
                    "product_data": {"name": "Pro", "metadata": {"product_id": "pro"}},
                    "recurring": {"interval": "month", "interval_count": "1"},
                },
                "quantity": "1",
            }
        ],
        "discounts": [{"coupon": Reward.objects.get().stripe_coupon_id}],
        "success_url": URLS["success_url"],
        "cancel_url": URLS["cancel_url"],
        "client_reference_id": "acme_corp",
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    assert url == fake_stripe.sessions[next(iter(fake_stripe.sessions))]["url"]
    assert url.startswith("https://checkout.stripe.com/")


def test_checkout_of_one_off_prices_is_a_payment_with_an_invoice(linked, fake_stripe):
    credits = Product.objects.create(product_id="credit_pack", name="Credit pack", is_add_on=True)
    Price.objects.create(product=credits, amount=4900, currency="eur", interval="one_off")
    checkout_url_for(customer=linked, product=credits, **URLS)

    [session] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert session.params["mode"] == "payment"
    assert session.params["line_items"] == [
        {
            "price_data": {
                "currency": "eur",
                "unit_amount": "4900",
                "product_data": {"name": "Credit pack", "metadata": {"product_id": "credit_pack"}},
            },
            "quantity": "1",
        }
    ]
    assert session.params["invoice_creation"]["enabled"] == "true"
    assert "discounts" not in session.params and "subscription_data" not in session.params
    assert fake_stripe.requests_to("POST", "/v1/customers") == []  # already linked


def test_checkout_uses_stripe_prices_and_converts_quarters(linked, catalogue, fake_stripe):
    scale = catalogue["scale"]
    scale.prices.filter(type="usage").update(stripe_price_id="price_api_calls_metered")
    scale.prices.filter(type="fixed").update(interval="quarter")
    checkout_url_for(customer=linked, product=scale, **URLS)
    [session] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    fixed, usage = session.params["line_items"]
    assert fixed["price_data"]["recurring"] == {"interval": "month", "interval_count": "3"}
    assert usage == {"price": "price_api_calls_metered"}  # metered: no quantity


def test_checkout_refuses_products_without_a_price_and_needs_stripe(linked, catalogue, fake_stripe, settings):
    with pytest.raises(ServiceError, match="Free has no price to pay for"):
        checkout_url_for(customer=linked, product=catalogue["free"], **URLS)
    settings.STRIPE_TEST_SECRET_KEY = ""
    with pytest.raises(StripeError) as refused:
        checkout_url_for(customer=linked, product=catalogue["pro"], **URLS)
    assert refused.value.code == "stripe_not_connected"
    assert fake_stripe.requests == []


def test_checkout_failing_raises_with_stripes_reason_and_keeps_the_new_link(customer, catalogue, fake_stripe):
    fake_stripe.add_customer()  # ids in Stripe are not ours
    fake_stripe.queue_error(400, message="Not a valid URL", code="url_invalid", path="POST /v1/checkout/sessions")
    with pytest.raises(StripeError) as failed:
        checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)
    assert failed.value.message == "Stripe refused the request: Not a valid URL"
    assert failed.value.code == "url_invalid"
    customer.refresh_from_db()
    assert customer.stripe_id  # the Stripe customer was created before the session failed

    fake_stripe.queue_error(502, times=3, path="POST /v1/checkout/sessions")
    with pytest.raises(StripeError, match=r"HTTP 502"):
        checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)
    checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)
    assert len(fake_stripe.requests_to("POST", "/v1/customers")) == 1
    assert len(fake_stripe.sessions) == 1


def test_checkout_time_out_raises_and_no_customer_is_linked(customer, catalogue, fake_stripe, settings):
    settings.STRIPE_TIMEOUT = 0.3
    fake_stripe.queue_error(500, times=3)
    with pytest.raises(StripeError) as failed:
        checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)
    assert failed.value.code == "stripe_api_error"
    customer.refresh_from_db()
    assert customer.stripe_id == "" and fake_stripe.customers == {}

    fake_stripe.queue_delay(1.0, times=3)
    with pytest.raises(StripeError, match="did not answer in time"):
        checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)
    customer.refresh_from_db()
    assert customer.stripe_id == ""
    assert AuditEntry.objects.filter(action="customer.stripe_link").count() == 0


def test_a_stripe_customer_made_again_after_an_unlink_is_a_new_one(customer, catalogue, fake_stripe):
    from customers.services.customers import customer_stripe_link

    checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)
    first = customer.stripe_id
    customer_stripe_link(customer=customer, stripe_id="", actor=None, reason="customer.deleted in Stripe")
    checkout_url_for(customer=customer, product=catalogue["pro"], **URLS)
    first_key, second_key = (r.idempotency_key for r in fake_stripe.requests_to("POST", "/v1/customers"))
    assert first_key != second_key
    assert customer.stripe_id != first and len(fake_stripe.customers) == 2


# --- delete in Stripe ---------------------------------------------------------------------------


def test_delete_in_stripe_deletes_the_stripe_customer_and_unlinks_it(linked, ops, fake_stripe):
    stripe_id = linked.stripe_id
    customer_delete_in_stripe(customer=linked, actor=ops)

    assert [r.path for r in fake_stripe.requests_to("DELETE", "/v1/customers/*")] == [f"/v1/customers/{stripe_id}"]
    assert fake_stripe.customers[stripe_id]["deleted"] is True
    linked.refresh_from_db()
    assert linked.stripe_id == ""
    entry = AuditEntry.objects.get(action="customer.stripe_unlink")
    assert (entry.actor_user, entry.before, entry.reason) == (ops, {"stripe_id": stripe_id}, "Deleted in Stripe")


def test_delete_in_stripe_of_a_customer_already_gone_in_stripe_just_unlinks(linked, fake_stripe):
    fake_stripe.customers[linked.stripe_id]["deleted"] = True
    customer_delete_in_stripe(customer=linked)
    linked.refresh_from_db()
    assert linked.stripe_id == ""


def test_delete_in_stripe_failing_keeps_the_link_and_raises(linked, fake_stripe):
    stripe_id = linked.stripe_id
    fake_stripe.queue_error(500, times=3)
    with pytest.raises(StripeError, match=r"HTTP 500"):
        customer_delete_in_stripe(customer=linked)
    linked.refresh_from_db()
    assert linked.stripe_id == stripe_id
    assert linked.stripe_sync_error.startswith("Not deleted in Stripe:")
    assert not fake_stripe.customers[stripe_id].get("deleted")
    customer_delete_in_stripe(customer=linked)
    linked.refresh_from_db()
    assert (linked.stripe_id, linked.stripe_sync_error) == ("", "")


def test_delete_in_stripe_of_an_unlinked_customer_does_nothing(customer, fake_stripe):
    customer_delete_in_stripe(customer=customer)
    assert fake_stripe.requests == []


def test_a_failed_details_push_is_sent_again_by_retry(linked, ops, fake_stripe, django_capture_on_commit_callbacks):
    fake_stripe.queue_error(500, times=3)
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="Unsent")
    linked.refresh_from_db()
    assert linked.stripe_sync_error

    assert retry_failed_push(linked) == ""
    linked.refresh_from_db()
    assert linked.stripe_sync_error == ""
    assert fake_stripe.customers[linked.stripe_id]["name"] == "Unsent"


def test_a_success_of_another_kind_does_not_hide_an_unsent_change(
    linked, ops, twenty_off, fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.queue_error(500, times=3)
    with django_capture_on_commit_callbacks(execute=True):
        edit(linked, ops, name="Unsent")
    with django_capture_on_commit_callbacks(execute=True):
        reward_apply(customer=linked, reward=twenty_off, actor=ops)
    linked.refresh_from_db()
    assert linked.stripe_sync_error.startswith("Name and email not sent to Stripe")
    assert CustomerReward.objects.get().stripe_synced_at is not None


# --- dashboard delete ---------------------------------------------------------------------------


def test_dashboard_delete_offers_stripe_deletion_unchecked_and_leaves_stripe_alone_by_default(
    linked, ops_client, fake_stripe
):
    form = ops_client.get(f"/customers/{linked.customer_id}/delete/").content.decode()
    assert "Also delete in Stripe" in form
    assert 'name="also_delete_in_stripe" value="on">' in form  # unchecked
    ops_client.post(f"/customers/{linked.customer_id}/delete/", {"confirm_id": linked.customer_id})
    linked.refresh_from_db()
    assert linked.deleted_at is not None and linked.stripe_id
    assert fake_stripe.requests_to("DELETE", "/v1/customers/*") == []


def test_dashboard_delete_can_also_delete_in_stripe(linked, ops_client, fake_stripe):
    stripe_id = linked.stripe_id
    response = ops_client.post(
        f"/customers/{linked.customer_id}/delete/",
        {"confirm_id": linked.customer_id, "also_delete_in_stripe": "on"},
        follow=True,
    )
    assert "The customer was also deleted in Stripe." in response.content.decode()
    assert fake_stripe.customers[stripe_id]["deleted"] is True
    linked.refresh_from_db()
    assert linked.deleted_at is not None and linked.stripe_id == ""


def test_dashboard_delete_says_when_stripe_refused_and_keeps_the_local_delete(linked, ops_client, fake_stripe):
    fake_stripe.queue_error(500, times=3)
    response = ops_client.post(
        f"/customers/{linked.customer_id}/delete/",
        {"confirm_id": linked.customer_id, "also_delete_in_stripe": "on"},
        follow=True,
    )
    assert "Deleted here, but not in Stripe" in response.content.decode()
    linked.refresh_from_db()
    assert linked.deleted_at is not None and linked.stripe_id


def test_dashboard_delete_without_stripe_offers_no_stripe_deletion(customer, ops_client):
    assert "Also delete in Stripe" not in ops_client.get(f"/customers/{customer.customer_id}/delete/").content.decode()
