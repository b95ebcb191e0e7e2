"""Every dashboard action writes its audit entry in the same transaction as the change."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import Balance, CustomerProduct, CustomerReward
from billing.services.rewards import reward_apply
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_delete
from tests.helpers import CONTACT, customize_basis, page_text


@pytest.fixture
def setup(customer, other_customer, catalogue, discount_rewards):
    applied = reward_apply(customer=customer, reward=discount_rewards["ten_dollars"], actor=None)
    customer_delete(customer=other_customer, actor=None)
    return {
        "customer": customer,
        "gone": other_customer,
        "applied": applied,
        "rewards": discount_rewards,
        "balance": Balance.objects.get(customer=customer, feature=catalogue["messages"]),
        "cp": CustomerProduct.objects.get(customer=customer, status="active"),
    }


# action: (url, data, audit action, the state it changes, what the entry must say)
ACTIONS = {
    "balance.set": (
        lambda s: f"/customers/acme_corp/balances/{s['balance'].pk}/edit/",
        lambda s: {"mode": "set", "value": "40", "reason": "refund", "expected_remaining": "100"},
        lambda s: Balance.objects.get(pk=s["balance"].pk).remaining,
        {"reason": "refund", "before": {"remaining": 100}, "after": {"remaining": 40}},
    ),
    "reward.apply": (
        lambda s: "/customers/acme_corp/rewards/add/",
        lambda s: {"reward": s["rewards"]["twenty"].pk},
        lambda s: CustomerReward.objects.filter(removed_at__isnull=True).count(),
        {"target_id": "twenty_off"},
    ),
    "reward.remove": (
        lambda s: f"/customers/acme_corp/rewards/{s['applied'].pk}/remove/",
        lambda s: {},
        lambda s: CustomerReward.objects.get(pk=s["applied"].pk).removed_at,
        {"before": {"reward": "ten_dollars"}},
    ),
    "customer.update": (
        lambda s: "/customers/acme_corp/details/edit/?field=email",
        lambda s: {**CONTACT, "email": "new@acme.test"},
        lambda s: Customer.objects.get(pk=s["customer"].pk).email,
        {"before": {"email": "ada@acme.test"}, "after": {"email": "new@acme.test"}},
    ),
    "customer.delete": (
        lambda s: "/customers/acme_corp/delete/",
        lambda s: {"confirm_id": "acme_corp", "reason": "closed"},
        lambda s: Customer.objects.get(pk=s["customer"].pk).deleted_at,
        {"reason": "closed"},
    ),
    "customer.restore": (
        lambda s: reverse("customers:restore", args=[s["gone"].pk]),
        lambda s: {},
        lambda s: Customer.objects.get(pk=s["gone"].pk).deleted_at,
        {"customer_ref": "globex"},
    ),
    "product.customize": (
        lambda s: f"/customers/acme_corp/products/{s['cp'].pk}/customize/",
        lambda s: {"included_messages": "300", "reason": "pilot", "expected": customize_basis(s["cp"])},
        lambda s: CustomerProduct.objects.get(pk=s["cp"].pk).status,
        {"reason": "pilot", "after": {"product": "free", "version": 1, "custom": True, "items": {"messages": 300}}},
    ),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_writes_one_audit_entry_with_actor_and_details(ops_client, ops, setup, action):
    url, data, _, expected = ACTIONS[action]
    trail = set(AuditEntry.objects.values_list("pk", flat=True))

    response = ops_client.post(url(setup), data(setup))

    assert response.status_code == 302
    entry = AuditEntry.objects.exclude(pk__in=trail).get(action=action)
    assert entry.actor_user == ops and entry.actor_label == "olivia_ops" and entry.env == "sandbox"
    for key, value in expected.items():
        stored = getattr(entry, key)
        if isinstance(value, dict):
            assert {k: stored[k] for k in value} == value
        else:
            assert stored == value


@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_is_undone_when_its_audit_entry_cannot_be_written(ops_client, setup, monkeypatch, action):
    url, data, state, _ = ACTIONS[action]
    before = state(setup)

    def refuse(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(AuditEntry.objects, "create", refuse)
    with pytest.raises(RuntimeError, match="audit table unavailable"):
        ops_client.post(url(setup), data(setup))

    assert state(setup) == before


def test_actions_show_in_the_activity_sidebar(ops_client, setup):
    for action in ("balance.set", "product.customize"):
        ops_client.post(ACTIONS[action][0](setup), ACTIONS[action][1](setup))
    ops_client.post("/customers/acme_corp/details/edit/?field=name", {**CONTACT, "name": "Acme Ltd"})

    activity = page_text(ops_client.get("/customers/acme_corp/")).split('id="section-sidebar-activity"', 1)[1]

    assert "olivia_ops</span> set Messages 100 → 40 · <q>refund</q>" in activity
    assert "olivia_ops</span> changed name “Acme Corp” → “Acme Ltd”" in activity
    assert "olivia_ops</span> made a custom Free for this customer · <q>pilot</q>" in activity
