"""rewards.get/create/delete: the catalogue's rewards in Autumn's shapes (a coupon or a feature grant, with its
promo codes), created and deleted through billing/services/rewards.py, audited, all or nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from autumn_sdk import Autumn
from autumn_sdk.models.createrewardop import CreateRewardResponse
from autumn_sdk.models.getrewardop import GetRewardResponse

from billing.models import Reward
from billing.services.rewards import reward_apply
from customers.models import AuditEntry

COUPON = {
    "id": "launch",
    "name": "Launch week",
    "type": "percentage_discount",
    "value": 25,
    "duration": {"type": "months", "length": 3},
    "plan_ids": None,
    "promo_codes": [{"code": "LAUNCH25"}],
}


def _ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def test_rewards_create_stores_a_coupon_and_answers_it_in_autumns_shape(api, catalogue):
    answer = _ok(api.post("rewards.create", {"coupon": COUPON}))

    coupon = answer["coupon"]
    assert "feature_grant" not in answer
    assert (coupon["id"], coupon["name"], coupon["type"], coupon["value"]) == (
        "launch",
        "Launch week",
        "percentage_discount",
        25,
    )
    assert coupon["duration"] == {"type": "months", "length": 3}
    assert [c["code"] for c in coupon["promo_codes"]] == ["LAUNCH25"]
    reward = Reward.objects.get(reward_id="launch")
    assert (reward.value, reward.duration, reward.duration_months, reward.promo_codes) == (
        Decimal(25),
        "months",
        3,
        ["LAUNCH25"],
    )
    entry = AuditEntry.objects.get(action="reward.create")
    assert (entry.target_id, entry.actor_api_key.env, entry.env) == ("launch", "sandbox", "sandbox")
    assert _ok(api.post("rewards.get", {"reward_id": "launch"})) == answer


def test_a_fixed_coupon_is_money_off_in_major_units(api, catalogue):
    body = {**COUPON, "type": "fixed_discount", "value": 10.5, "duration": {"type": "one_off"}, "promo_codes": []}

    answer = _ok(api.post("rewards.create", {"coupon": body}))

    assert (answer["coupon"]["value"], Reward.objects.get().value) == (10.5, Decimal(1050))


def test_rewards_create_stores_a_feature_grant(api, catalogue):
    grant = {
        "id": "bonus",
        "name": "Bonus messages",
        "grants": [{"feature_id": "messages", "included": 500, "expiry": {"type": "month", "length": 2}}],
        "promo_codes": [{"code": "BONUS500", "max_uses": None}],
    }

    answer = _ok(api.post("rewards.create", {"feature_grant": grant}))

    assert answer["feature_grant"]["grants"] == [
        {"feature_id": "messages", "included": 500, "expiry": {"type": "month", "length": 2}}
    ]
    reward = Reward.objects.get(reward_id="bonus")
    assert (reward.type, reward.grant_feature.feature_id, reward.value, reward.duration_months) == (
        "feature_grant",
        "messages",
        Decimal(500),
        2,
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "invalid_inputs"),
        ({"coupon": COUPON, "feature_grant": {"id": "x", "name": "x", "grants": [], "promo_codes": []}}, 422, None),
        ({"coupon": {**COUPON, "value": 101}}, 400, "invalid_inputs"),
        ({"coupon": {**COUPON, "value": 1.005, "type": "fixed_discount"}}, 422, "invalid_inputs"),
        ({"coupon": {**COUPON, "duration": {"type": "months"}}}, 422, "invalid_inputs"),
        ({"coupon": {**COUPON, "type": "invoice_credits"}}, 422, None),
        ({"coupon": {**COUPON, "plan_ids": ["pro"]}}, 422, "not_supported"),
        ({"coupon": {**COUPON, "promo_codes": [{"code": "A", "global_max_redemption": 5}]}}, 422, "not_supported"),
        ({"coupon": {**COUPON, "promo_codes": [{"code": "A"}, {"code": "A"}]}}, 400, "invalid_inputs"),
        ({"coupon": {**COUPON, "id": "has space"}}, 400, "invalid_inputs"),
        ({"coupon": {**COUPON, "id": "ten_dollars"}}, 409, "duplicate_reward_id"),
        ({"coupon": {**COUPON, "promo_codes": [{"code": "TEN"}]}}, 409, "duplicate_promo_code"),
        (
            {"feature_grant": {"id": "g", "name": "G", "grants": [{"feature_id": "nope", "included": 1}]}},
            404,
            "feature_not_found",
        ),
        (
            {
                "feature_grant": {
                    "id": "g",
                    "name": "G",
                    "grants": [{"feature_id": "messages", "included": 1}, {"feature_id": "seats", "included": 1}],
                }
            },
            422,
            None,
        ),
    ],
)
def test_rewards_create_refuses_bad_input_and_changes_nothing(api, catalogue, discount_rewards, body, status, code):
    discount_rewards["ten_dollars"].promo_codes = ["TEN"]
    discount_rewards["ten_dollars"].save()
    rewards, entries = Reward.objects.count(), AuditEntry.objects.count()

    response = api.post("rewards.create", body)

    assert response.status_code == status, response.content
    assert set(response.json()) == {"message", "code", "env"}
    if code:
        assert response.json()["code"] == code
    assert (Reward.objects.count(), AuditEntry.objects.count()) == (rewards, entries)


def test_rewards_get_answers_404_for_an_unknown_reward(api, catalogue):
    response = api.post("rewards.get", {"reward_id": "nope"})

    assert response.status_code == 404
    assert response.json() == {"message": "Reward nope not found", "code": "reward_not_found", "env": "sandbox"}


def test_rewards_delete_removes_a_reward_no_customer_had(api, catalogue, discount_rewards):
    assert _ok(api.post("rewards.delete", {"reward_id": "ten_dollars"})) == {"success": True}

    assert not Reward.objects.filter(reward_id="ten_dollars").exists()
    assert AuditEntry.objects.get(action="reward.delete").target_id == "ten_dollars"
    assert api.post("rewards.delete", {"reward_id": "ten_dollars"}).status_code == 404


def test_rewards_delete_keeps_a_reward_a_customer_had(api, customer, discount_rewards):
    reward_apply(customer=customer, reward=discount_rewards["twenty"], actor=None)

    response = api.post("rewards.delete", {"reward_id": "twenty_off"})

    assert (response.status_code, response.json()["code"]) == (409, "reward_in_use")
    assert Reward.objects.filter(reward_id="twenty_off").exists()
    assert not AuditEntry.objects.filter(action="reward.delete").exists()


@pytest.mark.django_db(transaction=True)
def test_python_client_creates_reads_and_deletes_a_reward(live_server, sandbox_key, catalogue):
    _, raw = sandbox_key
    with Autumn(secret_key=raw, server_url=live_server.url, fail_open=False) as autumn:
        created = autumn.rewards.create(
            coupon={
                "id": "launch",
                "name": "Launch week",
                "type": "percentage_discount",
                "value": 25,
                "duration": {"type": "months", "length": 3},
                "plan_ids": None,
                "promo_codes": [{"code": "LAUNCH25"}],
            }
        )
        assert isinstance(created, CreateRewardResponse)
        assert (created.coupon.id, created.coupon.value, created.coupon.duration.length) == ("launch", 25, 3)

        fetched = autumn.rewards.get(reward_id="launch")
        assert isinstance(fetched, GetRewardResponse)
        assert [c.code for c in fetched.coupon.promo_codes] == ["LAUNCH25"]

        assert autumn.rewards.delete(reward_id="launch").success is True
    assert not Reward.objects.filter(reward_id="launch").exists()
