"""billing.preview_attach, billing.update (plan changes and each cancel action), billing.preview_update,
billing.open_customer_portal and the 1.2 /v1/cancel and /v1/customers/{id}/billing_portal."""

from __future__ import annotations

import pytest

from billing.models import Balance, CustomerProduct
from billing.services.plans import GRANT_FREE, plan_attach
from customers.models import AuditEntry
from tests.helpers import subscribe


def _statuses(customer) -> dict[str, str]:
    cps = CustomerProduct.objects.filter(customer=customer).exclude(status="expired").select_related("product")
    return {cp.product.product_id: cp.status_label for cp in cps}


@pytest.fixture
def on_pro(customer, catalogue, ops):
    plan_attach(customer=customer, product=catalogue["pro"], actor=ops, method=GRANT_FREE, reason="Pilot")
    return customer


@pytest.fixture
def subscribed_pro(linked, catalogue, fake_stripe):
    """Acme on Pro through a live Stripe subscription, halfway through its month."""
    return subscribe(linked, catalogue["pro"], fake_stripe)


def test_preview_attach_of_pro_shows_what_is_due_and_what_changes_and_changes_nothing(api, customer, fake_stripe):
    before = AuditEntry.objects.count()
    r = api.post("billing.preview_attach", {"customer_id": "acme_corp", "plan_id": "pro"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["total"] == 99 and body["currency"] == "usd"
    assert body["redirect_to_checkout"] is True and body["checkout_type"] == "stripe_checkout"
    assert body["line_items"][0]["plan_id"] == "pro"
    assert [i["plan_id"] for i in body["incoming"]] == ["pro"]
    assert [o["plan_id"] for o in body["outgoing"]] == ["free"]
    assert {"feature_id": "messages", "quantity": 5000.0} in body["incoming"][0]["feature_quantities"]
    assert body["next_cycle"]["total"] == 99
    assert AuditEntry.objects.count() == before and _statuses(customer) == {"free": "Active"}


def test_an_upgrade_of_a_subscription_is_prorated_now_and_updates_stripe(
    api, subscribed_pro, fake_stripe, linked, django_capture_on_commit_callbacks
):
    preview = api.post("billing.preview_attach", {"customer_id": "acme_corp", "plan_id": "scale"}).json()
    assert preview["redirect_to_checkout"] is False
    assert 74 <= preview["total"] <= 77  # (250 − 99) × half a month

    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("billing.attach", {"customer_id": "acme_corp", "plan_id": "scale"})
    assert r.status_code == 200 and r.json()["payment_url"] is None
    assert _statuses(linked) == {"scale": "Active"}
    sub = fake_stripe.subscriptions[subscribed_pro["id"]]
    assert sub["last_proration_behavior"] == "always_invoice"
    assert [i["price"].get("unit_amount") for i in sub["items"]["data"]] == [25000]


def test_billing_update_downgrades_at_the_period_end_then_each_cancel_action(api, on_pro):
    r = api.post("billing.preview_update", {"customer_id": "acme_corp", "plan_id": "free"})
    assert r.status_code == 200 and r.json()["intent"] == "update_plan" and r.json()["total"] == 0
    r = api.post("billing.update", {"customer_id": "acme_corp", "plan_id": "free"})
    assert r.status_code == 200, r.content
    assert _statuses(on_pro) == {"pro": "Cancelling", "free": "Scheduled"}

    r = api.post("billing.update", {"customer_id": "acme_corp", "plan_id": "pro", "cancel_action": "uncancel"})
    assert r.status_code == 200 and _statuses(on_pro) == {"pro": "Active"}

    body = {"customer_id": "acme_corp", "plan_id": "pro", "cancel_action": "cancel_end_of_cycle"}
    preview = api.post("billing.preview_update", body).json()
    assert preview["intent"] == "cancel_end_of_cycle" and preview["outgoing"][0]["plan_id"] == "pro"
    assert api.post("billing.update", body).status_code == 200
    assert _statuses(on_pro) == {"pro": "Cancelling"}

    body["cancel_action"] = "cancel_immediately"
    preview = api.post("billing.preview_update", body).json()
    assert [i["plan_id"] for i in preview["incoming"]] == ["free"]  # the default plan comes back
    assert api.post("billing.update", body).status_code == 200
    assert _statuses(on_pro) == {"free": "Active"}
    assert AuditEntry.objects.filter(customer=on_pro, actor_label__startswith="API key").count() >= 4


def test_cancel_of_a_subscription_cancels_it_in_stripe(
    api, subscribed_pro, fake_stripe, linked, django_capture_on_commit_callbacks
):
    def update(action):
        body = {"customer_id": "acme_corp", "plan_id": "pro", "cancel_action": action}
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post("billing.update", body).status_code == 200

    update("cancel_end_of_cycle")
    assert fake_stripe.subscriptions[subscribed_pro["id"]]["cancel_at_period_end"] is True
    update("uncancel")
    assert fake_stripe.subscriptions[subscribed_pro["id"]]["cancel_at_period_end"] is False
    update("cancel_immediately")
    assert fake_stripe.subscriptions[subscribed_pro["id"]]["status"] == "canceled"
    assert _statuses(linked) == {"free": "Active"}


def test_legacy_cancel_cancels_at_the_period_end_unless_told_immediately(api, on_pro):
    r = api.post("cancel", {"customer_id": "acme_corp", "product_id": "pro"})
    assert r.status_code == 200 and r.json() == {"success": True, "customer_id": "acme_corp", "product_id": "pro"}
    assert _statuses(on_pro) == {"pro": "Cancelling"}
    api.post("cancel", {"customer_id": "acme_corp", "product_id": "pro", "cancel_immediately": True})
    assert _statuses(on_pro) == {"free": "Active"}


def test_open_customer_portal_answers_a_stripe_billing_portal_url(api, linked, fake_stripe):
    r = api.post("billing.open_customer_portal", {"customer_id": "acme_corp", "return_url": "https://app.test/"})
    assert r.status_code == 200, r.content
    assert r.json()["url"].startswith("https://billing.stripe.test/p/session/")
    session = next(iter(fake_stripe.portal_sessions.values()))
    assert session["customer"] == linked.stripe_id and session["return_url"] == "https://app.test/"
    legacy = api.post("customers/acme_corp/billing_portal", {"return_url": "https://app.test/"})
    assert legacy.status_code == 200 and legacy.json()["customer_id"] == "acme_corp"


@pytest.mark.parametrize("path", ["billing.open_customer_portal", "customers/acme_corp/billing_portal"])
def test_a_bad_return_url_is_refused_naming_return_url(api, linked, fake_stripe, path):
    r = api.post(path, {"customer_id": "acme_corp", "return_url": "javascript:alert(1)"})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_inputs" and r.json()["message"] == "return_url must be an http(s) URL."
    assert not fake_stripe.portal_sessions


def test_open_customer_portal_without_stripe_is_a_clear_400(api, customer):
    r = api.post("billing.open_customer_portal", {"customer_id": "acme_corp"})
    assert r.status_code == 400 and r.json()["code"] == "stripe_not_connected"


@pytest.mark.parametrize(
    "path, body, status, code",
    [
        ("billing.preview_attach", {"customer_id": "acme_corp", "plan_id": "nope"}, 404, "product_not_found"),
        ("billing.attach", {"customer_id": "acme_corp", "plan_id": "pro"}, 409, "product_already_attached"),
        ("billing.preview_attach", {"customer_id": "acme_corp", "plan_id": "pro"}, 409, "product_already_attached"),
        (
            "billing.update",
            {"customer_id": "acme_corp", "plan_id": "pro", "cancel_action": "uncancel"},
            409,
            "nothing_to_uncancel",
        ),
        (
            "billing.update",
            {"customer_id": "acme_corp", "plan_id": "scale", "cancel_action": "cancel_immediately"},
            404,
            "product_not_found",
        ),
        ("billing.update", {"customer_id": "acme_corp"}, 422, "invalid_inputs"),
        (
            "billing.update",
            {"customer_id": "acme_corp", "plan_id": "pro", "cancel_action": "pause"},
            422,
            "invalid_inputs",
        ),
        (
            "billing.update",
            {"customer_id": "globex", "plan_id": "free", "cancel_action": "cancel_immediately"},
            404,
            "customer_not_found",
        ),
        ("billing.attach", {"customer_id": "acme_corp", "plan_id": "scale"}, 400, "stripe_not_connected"),
    ],
)
def test_bad_plan_changes_answer_autumns_error_and_change_nothing(api, on_pro, globex, path, body, status, code):
    before = (AuditEntry.objects.count(), Balance.objects.count())
    r = api.post(path, body)
    assert r.status_code == status, r.content
    assert r.json()["code"] == code and r.json()["env"] == "sandbox"
    assert (AuditEntry.objects.count(), Balance.objects.count()) == before
    assert _statuses(on_pro) == {"pro": "Active"}


def test_billing_update_is_idempotent_under_its_key(api, on_pro):
    body = {"customer_id": "acme_corp", "plan_id": "pro", "cancel_action": "cancel_end_of_cycle"}
    first = api.post("billing.update", body, headers={"Idempotency-Key": "cancel-1"})
    again = api.post("billing.update", body, headers={"Idempotency-Key": "cancel-1"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert AuditEntry.objects.filter(customer=on_pro, reason="", action="product.update").count() == 1
