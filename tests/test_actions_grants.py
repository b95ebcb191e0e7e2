"""Create Balance and deleting a grant on the customer page, through the test client: what the page shows, what
is stored and audited, and what is refused."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Balance, Event
from billing.services.track import balance_track
from customers.models import AuditEntry
from tests.helpers import DashboardClient as Client
from tests.helpers import page_text

HTMX = {"HTTP_HX_REQUEST": "true"}
CREATE = "/customers/acme_corp/balances/create/"


@pytest.fixture
def support_client(support) -> Client:
    client = Client()
    client.force_login(support)
    return client


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _create(client, catalogue, *, htmx=False, **data):
    form = {"feature": catalogue["messages"].pk, "amount": "50", "kind": "one_off", "reason": "Goodwill after outage"}
    return client.post(CREATE, {**form, **data}, **(HTMX if htmx else {}))


def test_support_creates_an_expiring_grant_shown_as_granted_beside_the_plan(support_client, customer, catalogue):
    expires = timezone.now() + timedelta(days=5)
    assert "Create Balance" in page_text(support_client.get("/customers/acme_corp/"))
    response = _create(support_client, catalogue, htmx=True, expires_at=_local(expires))
    assert response.status_code == 200
    assert "Granted 50 Messages to Acme Corp." in page_text(response)

    grant = Balance.objects.get(customer=customer, customer_product__isnull=True)
    assert (grant.granted, grant.interval, grant.expires_at.replace(second=0, microsecond=0)) == (
        Decimal(50),
        "lifetime",
        expires.replace(second=0, microsecond=0),
    )
    page = " ".join(re.sub(r"<[^>]+>", " ", page_text(support_client.get("/customers/acme_corp/"))).split())
    assert "150 / 150" in page  # the row adds the plan's 100 and the grant's 50
    assert "Free 100 / 100" in page and "Granted until" in page
    entry = AuditEntry.objects.get(action="balance.create")
    assert (entry.actor_label, entry.reason) == ("sam_support", "Goodwill after outage")


def test_a_resetting_grant_takes_its_interval_and_first_reset(support_client, customer, catalogue):
    first = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    response = _create(
        support_client, catalogue, kind="resetting", interval="week", next_reset_at=_local(first), amount="7.5"
    )
    assert response.status_code == 302
    grant = Balance.objects.get(customer=customer, customer_product__isnull=True)
    assert (grant.remaining, grant.interval, grant.next_reset_at) == (Decimal("7.5"), "week", first)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reason": ""}, "reason"),
        ({"amount": "-3"}, "negative"),
        ({"amount": "lots"}, "number"),
        ({"feature": ""}, "required"),
        ({"expires_at": "2001-01-01T00:00"}, "The expiry must be in the future."),
        ({"kind": "resetting", "next_reset_at": "2001-01-01T00:00"}, "The next reset date must be in the future."),
    ],
)
def test_a_bad_grant_is_refused_with_the_reason_and_nothing_is_stored(
    support_client, customer, catalogue, data, message
):
    trail = AuditEntry.objects.count()
    response = _create(support_client, catalogue, **data)
    assert response.status_code == 422
    assert message.lower() in page_text(response).lower()
    assert not Balance.objects.filter(customer=customer, customer_product__isnull=True).exists()
    assert AuditEntry.objects.count() == trail


def test_deleting_a_grant_needs_a_reason_and_keeps_its_events(support_client, customer, catalogue):
    _create(support_client, catalogue)
    grant = Balance.objects.get(customer=customer, customer_product__isnull=True)
    balance_track(customer=customer, feature=catalogue["messages"], value=Decimal(120), actor=None)
    popup = page_text(support_client.get(f"/customers/acme_corp/balances/{grant.pk}/edit/"))
    assert "Delete this grant" in popup
    url = f"/customers/acme_corp/balances/{grant.pk}/delete/"

    refused = support_client.post(url, {"reason": ""})
    assert refused.status_code == 422 and Balance.objects.filter(pk=grant.pk).exists()
    assert support_client.post(url, {"reason": "Given by mistake"}).status_code == 302

    assert not Balance.all_objects.filter(pk=grant.pk).exists()
    assert Event.objects.get(customer=customer).value == 120
    assert AuditEntry.objects.get(action="balance.delete").reason == "Given by mistake"
    assert "deleted a granted balance of Messages" in page_text(support_client.get("/customers/acme_corp/"))


def test_a_plans_balance_has_no_delete(support_client, customer, catalogue):
    plan_balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    assert "Delete this grant" not in page_text(
        support_client.get(f"/customers/acme_corp/balances/{plan_balance.pk}/edit/")
    )
    assert (
        support_client.post(f"/customers/acme_corp/balances/{plan_balance.pk}/delete/", {"reason": "x"}).status_code
        == 404
    )
    assert Balance.objects.filter(pk=plan_balance.pk).exists()


def test_viewer_sees_no_create_balance(client, viewer, customer):
    client.force_login(viewer)
    assert "Create Balance" not in page_text(client.get("/customers/acme_corp/"))
