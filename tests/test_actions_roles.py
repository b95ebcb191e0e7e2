"""Who may use which action: every mutating endpoint × every role, and CSRF on each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from billing.models import Balance, BulkJob, CustomerProduct, CustomerReward, Entity, Invoice
from billing.services import bulk
from billing.services.balances import balance_create
from billing.services.entities import entity_create
from billing.services.plans import END_OF_CYCLE, GRANT_FREE, plan_attach, plan_cancel
from billing.services.rewards import reward_apply
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_delete
from tests.helpers import CONTACT, customize_basis, page_text
from tests.helpers import DashboardClient as Client

ROLES = ["anonymous", "viewer", "support", "ops", "superuser"]
EVERYONE_WHO_EDITS = {"ops", "superuser"}


@dataclass
class World:
    customer: Customer
    messages: Balance
    applied: CustomerReward
    deleted: Customer
    product: CustomerProduct
    rewards: dict
    catalogue: dict
    cancelling: CustomerProduct
    grant: Balance
    job: BulkJob
    entity: Entity
    invoices: dict


def stripe_invoices(fake, customer) -> dict:
    """A paid and an open invoice of the customer, in the fake Stripe and recorded here."""
    found = {}
    for status in ("paid", "open"):
        obj = fake.add_invoice(customer="cus_acme", status=status, total=9900)
        found[status] = Invoice.objects.create(
            customer=customer,
            stripe_id=obj["id"],
            status=status,
            total=9900,
            amount_paid=obj["amount_paid"],
            lines=[{"id": obj["lines"]["data"][0]["id"], "description": "Pro", "quantity": 1, "amount": 9900}],
        )
    return found


@pytest.fixture
def world(customer, other_customer, catalogue, discount_rewards, fake_stripe) -> World:
    applied = reward_apply(customer=customer, reward=discount_rewards["ten_dollars"], actor=None)
    customer_delete(customer=other_customer, actor=None)
    addon = plan_attach(customer=customer, product=catalogue["seats_addon"], actor=None, method=GRANT_FREE, reason="x")
    plan_cancel(customer=customer, customer_product=addon.customer_product, actor=None, when=END_OF_CYCLE)
    return World(
        customer=customer,
        messages=Balance.objects.get(customer=customer, feature=catalogue["messages"]),
        applied=applied,
        deleted=other_customer,
        product=CustomerProduct.objects.get(customer=customer, status="active", product=catalogue["free"]),
        rewards=discount_rewards,
        catalogue=catalogue,
        cancelling=addon.customer_product,
        grant=balance_create(customer=customer, feature=catalogue["api_calls"], actor=None, granted=5, reason="x"),
        job=bulk.bulk_job_start(  # queued: this test's transaction never commits, so no worker takes it
            env="sandbox",
            customers=Customer.objects.filter(pk=customer.pk),
            got=bulk.bulk_input(bulk.ADD_BALANCE, {"feature": "messages", "amount": "5"}),
            actor=None,
            reason="x",
        ),
        entity=entity_create(customer=customer, entity_id="seat_1", feature=catalogue["seats"], actor=None),
        invoices=stripe_invoices(fake_stripe, customer),
    )


# name: (url, POST data, roles allowed besides ops and superusers)
ENDPOINTS = {
    "balance edit": (
        lambda w: f"/customers/acme_corp/balances/{w.messages.pk}/edit/",
        lambda w: {"mode": "set", "value": "150", "reason": "goodwill", "expected_remaining": "100"},
        {"support"},
    ),
    "create balance": (
        lambda w: "/customers/acme_corp/balances/create/",
        lambda w: {"feature": w.catalogue["seats"].pk, "amount": "3", "kind": "one_off", "reason": "goodwill"},
        {"support"},
    ),
    "delete grant": (
        lambda w: f"/customers/acme_corp/balances/{w.grant.pk}/delete/",
        lambda w: {"reason": "given by mistake"},
        {"support"},
    ),
    "add reward": (lambda w: "/customers/acme_corp/rewards/add/", lambda w: {"reward": w.rewards["twenty"].pk}, set()),
    "remove reward": (lambda w: f"/customers/acme_corp/rewards/{w.applied.pk}/remove/", lambda w: {}, set()),
    "create entity": (
        lambda w: "/customers/acme_corp/entities/create/",
        lambda w: {"entity_id": "seat_2", "name": "Bo", "feature": w.catalogue["seats"].pk},
        set(),
    ),
    "delete entity": (
        lambda w: f"/customers/acme_corp/entities/{w.entity.pk}/delete/",
        lambda w: {"reason": "left the team"},
        set(),
    ),
    "edit details": (
        lambda w: "/customers/acme_corp/details/edit/?field=name",
        lambda w: {**CONTACT, "name": "Acme Ltd"},
        set(),
    ),
    "delete customer": (lambda w: "/customers/acme_corp/delete/", lambda w: {"confirm_id": "acme_corp"}, set()),
    "restore customer": (lambda w: reverse("customers:restore", args=[w.deleted.pk]), lambda w: {}, set()),
    "customize product": (
        lambda w: f"/customers/acme_corp/products/{w.product.pk}/customize/",
        lambda w: {"included_messages": "250", "reason": "deal", "expected": customize_basis(w.product)},
        set(),
    ),
    "attach product": (
        lambda w: "/customers/acme_corp/products/attach/",
        lambda w: {"product": w.catalogue["pro"].pk, "when": "now", "method": GRANT_FREE, "reason": "deal"},
        set(),
    ),
    "cancel product": (
        lambda w: f"/customers/acme_corp/products/{w.product.pk}/cancel/",
        lambda w: {"when": "now", "reason": "churn"},
        set(),
    ),
    "uncancel product": (
        lambda w: f"/customers/acme_corp/products/{w.cancelling.pk}/uncancel/",
        lambda w: {"reason": "stays"},
        set(),
    ),
}
ENDPOINTS |= {
    "start bulk job": (
        lambda w: f"/bulk/?ids={w.customer.pk}&action=add_balance",
        lambda w: {
            "ids": w.customer.pk,
            "action": "add_balance",
            "act_feature": "messages",
            "act_amount": "10",
            "reason": "goodwill",
            "run": "1",
        },
        set(),
    ),
    "cancel bulk job": (lambda w: f"/jobs/{w.job.pk}/cancel/", lambda w: {}, set()),
    "record usage": (
        lambda w: "/customers/acme_corp/features/messages/record-usage/",
        lambda w: {"value": "3", "properties": '{"source": "support"}', "reason": "lost in an outage"},
        {"support"},
    ),
    "check balance": (
        lambda w: "/customers/acme_corp/features/messages/check/",
        lambda w: {"required_balance": "1"},
        {"support"},
    ),
    "create customer": (lambda w: "/new-customer/", lambda w: {"id": "new_co", "name": "New Co"}, set()),
    "void invoice": (
        lambda w: f"/customers/acme_corp/invoices/{w.invoices['open'].pk}/void/",
        lambda w: {"reason": "billed twice", "expected_status": "open"},
        set(),
    ),
    "refund invoice": (
        lambda w: f"/customers/acme_corp/invoices/{w.invoices['paid'].pk}/refund/",
        lambda w: {
            "amount": "10.00",
            "stripe_reason": "requested_by_customer",
            "reason": "outage",
            "expected_status": "paid",
            "expected_refunded": "0",
        },
        set(),
    ),
    "credit invoice": (
        lambda w: f"/customers/acme_corp/invoices/{w.invoices['paid'].pk}/credit/",
        lambda w: {
            "amount": "5.00",
            "credit_reason": "order_change",
            "memo": "",
            "destination": "customer_balance",
            "reason": "goodwill",
            "expected_status": "paid",
        },
        set(),
    ),
}
# Actions that answer in place (the popup shows their result) rather than going back to the page.
ANSWERED_IN_PLACE = {"check balance"}
# Restore and Cancel job are buttons, with no form page.
FORMS = [name for name in ENDPOINTS if name not in ("restore customer", "cancel bulk job")]


def client_for(role: str, request) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_mutating_endpoint_by_role(request, world, endpoint, role):
    url, data, also_allowed = ENDPOINTS[endpoint]
    client = client_for(role, request)
    trail = AuditEntry.objects.count()

    response = client.post(url(world), data(world))

    if role == "anonymous":
        assert response.status_code == 302 and response.url.startswith("/login/")
        assert AuditEntry.objects.count() == trail
    elif role in EVERYONE_WHO_EDITS | also_allowed:
        assert response.status_code == (200 if endpoint in ANSWERED_IN_PLACE else 302), page_text(response)[:2000]
        assert AuditEntry.objects.count() > trail  # it happened, and was audited
    else:
        assert response.status_code == 403
        assert "Your role doesn't allow this action." in page_text(response)
        assert AuditEntry.objects.count() == trail  # nothing happened


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", FORMS)
def test_action_form_by_role(request, world, endpoint, role):
    url, _, also_allowed = ENDPOINTS[endpoint]

    response = client_for(role, request).get(url(world))

    expected = {"anonymous": 302}.get(role, 200 if role in EVERYONE_WHO_EDITS | also_allowed else 403)
    assert response.status_code == expected


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_post_without_csrf_token_is_refused(world, ops, endpoint):
    url, data, _ = ENDPOINTS[endpoint]
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)
    trail = AuditEntry.objects.count()

    response = client.post(url(world), data(world))

    assert response.status_code == 403
    assert AuditEntry.objects.count() == trail


def test_post_with_the_csrf_token_goes_through(world, ops):
    url, data, _ = ENDPOINTS["balance edit"]
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)
    client.get(url(world))

    response = client.post(url(world), {**data(world), "csrfmiddlewaretoken": client.cookies["csrftoken"].value})

    assert response.status_code == 302
    world.messages.refresh_from_db()
    assert world.messages.remaining == 150


@pytest.mark.parametrize(
    ("role", "sees_restore"), [("viewer", False), ("support", False), ("ops", True), ("superuser", True)]
)
def test_deleted_customers_page_shows_restore_only_to_those_who_may(request, world, role, sees_restore):
    html = page_text(client_for(role, request).get(reverse("customers:deleted")))

    assert "globex" in html
    assert (">Restore</button>" in html) is sees_restore
