"""The API's reads of a customer show it brought current: a due reset is applied before the answer shows
the balance (billing.services.current, called by the operation before it reads)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from billing.models import Balance


def _due_reset(customer, remaining: int) -> None:
    Balance.objects.filter(customer=customer, feature__feature_id="messages").update(
        remaining=remaining, next_reset_at=timezone.now() - timedelta(hours=1)
    )


def test_customers_list_shows_each_customer_after_its_due_reset(api, customer, other_customer):
    _due_reset(customer, remaining=1)
    _due_reset(other_customer, remaining=2)
    rows = api.post("customers.list", {"limit": 10}).json()["list"]
    assert {r["id"]: r["balances"]["messages"]["remaining"] for r in rows} == {"acme_corp": 100, "globex": 100}


def test_balances_list_of_a_customer_shows_its_due_reset_applied(api, customer):
    _due_reset(customer, remaining=4)
    rows = api.post("balances.list", {"customer_id": "acme_corp"}).json()["list"]
    assert [r["remaining"] for r in rows if r["feature_id"] == "messages"] == [100]
