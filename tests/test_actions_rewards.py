"""Add Coupon → select a reward → Add Reward, and removing it, through the test client."""

from __future__ import annotations

from django.utils.html import strip_tags

from billing.models import CustomerReward
from customers.models import AuditEntry
from tests.helpers import page_text

ADD = "/customers/acme_corp/rewards/add/"


def test_add_coupon_offers_only_active_discount_rewards(ops_client, customer, discount_rewards):
    response = ops_client.get(ADD)

    html = page_text(response)
    assert response.status_code == 200
    assert "Select a reward" in html and ">Add Reward</button>" in html
    assert "20% off · 3 months" in html and "$10.00 off · once" in html
    assert "Old promo" not in html  # inactive
    assert "Free month" not in html  # not a discount


def test_add_reward_applies_it_with_its_expiry_and_audits(ops_client, ops, customer, discount_rewards):
    twenty = discount_rewards["twenty"]

    response = ops_client.post(ADD, {"reward": twenty.pk})

    assert response.status_code == 302 and response.url == "/customers/acme_corp/"
    applied = CustomerReward.objects.get(customer=customer, reward=twenty)
    assert applied.applied_by == ops and applied.removed_at is None
    assert applied.expires_at is not None and (applied.expires_at - applied.applied_at).days in range(89, 93)
    entry = AuditEntry.objects.get(action="reward.apply", customer=customer)
    assert entry.actor_user == ops and entry.target_id == "twenty_off"


def test_reward_already_applied_is_refused_with_a_clear_message(ops_client, customer, discount_rewards):
    twenty = discount_rewards["twenty"]
    ops_client.post(ADD, {"reward": twenty.pk})

    shown = page_text(ops_client.get(ADD))
    response = ops_client.post(ADD, {"reward": twenty.pk}, HTTP_HX_REQUEST="true")

    assert "already applied" in shown
    assert response.status_code == 422
    html = page_text(response)
    assert html.lstrip().startswith("<dialog") and "Acme Corp already has 20% off." in html
    assert CustomerReward.objects.filter(customer=customer, reward=twenty).count() == 1
    assert AuditEntry.objects.filter(action="reward.apply").count() == 1


def test_inactive_or_non_discount_or_missing_reward_is_refused(ops_client, customer, discount_rewards):
    for data in (
        {"reward": discount_rewards["retired"].pk},
        {"reward": discount_rewards["free_month"].pk},
        {"reward": "nope"},
        {},
    ):
        response = ops_client.post(ADD, data)
        assert response.status_code == 422
        assert "That reward can't be added." in page_text(response) or "Select a reward." in page_text(response)
    assert not CustomerReward.objects.filter(customer=customer).exists()


def test_ops_can_remove_a_reward(ops_client, ops, customer, discount_rewards):
    ops_client.post(ADD, {"reward": discount_rewards["ten_dollars"].pk})
    applied = CustomerReward.objects.get(customer=customer)
    url = f"/customers/acme_corp/rewards/{applied.pk}/remove/"

    confirm = page_text(ops_client.get(url))
    response = ops_client.post(url)

    assert "Remove $10 off ($10.00 off · once) from Acme Corp?" in strip_tags(confirm)
    assert response.status_code == 302
    applied.refresh_from_db()
    assert applied.removed_at is not None
    assert AuditEntry.objects.filter(action="reward.remove", customer=customer, actor_user=ops).exists()
    # Once removed it can be added again.
    assert ops_client.post(ADD, {"reward": discount_rewards["ten_dollars"].pk}).status_code == 302
    assert ops_client.post(url).status_code == 404  # the removed one is gone
