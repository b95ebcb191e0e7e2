"""The 1.2 /track's overage_behavior "reject" decides under the track's own locks: concurrent tracks that
together ask more than the balance never both pass and overdraw it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from billing.models import Balance, Event
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from tests.api.conftest import ApiClient
from tests.conftest import ensure_roles
from tests.test_plan_races import _race

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_reject_tracks_take_exactly_what_the_balance_covers(catalogue, ops):
    ensure_roles()
    key = api_key_create(env="sandbox", name="Rejects", actor=ops)[1]
    for round_ in range(3):
        customer = customer_create(env="sandbox", customer_id=f"reject_{round_}", actor=ops)  # 100 messages
        body = {
            "customer_id": customer.customer_id,
            "feature_id": "messages",
            "value": 30,
            "overage_behavior": "reject",
        }
        statuses = _race(8, lambda n, body=body: lambda: ApiClient(Client(), key).post("track", body))
        assert sorted(statuses) == [200] * 3 + [409] * 5
        balance = Balance.objects.get(customer=customer, feature__feature_id="messages")
        assert balance.remaining == Decimal(10)
        assert Event.objects.filter(customer=customer).count() == 3
