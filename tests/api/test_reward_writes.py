"""rewards.get/create/delete: the catalogue's rewards in Autumn's shapes (a coupon or a feature grant, with its
promo codes), created and deleted through billing/services/rewards.py, audited, all or nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from autumn_sdk import Autumn
from autumn_sdk.models.createrewardop import CreateRewardResponse
from autumn_sdk.models.getrewardop import GetRewardResponse
from autumn_sdk.models.redeemrewardcodeop import RedeemRewardCodeResponse

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


# --- rewards.redeem ------------------------------------------------------------------------------


@pytest.fixture
def promo_rewards(discount_rewards, catalogue):
    discount_rewards["twenty"].promo_codes = ["SPRING20"]
    discount_rewards["twenty"].save()
    discount_rewards["retired"].promo_codes = ["OLD50"]
    discount_rewards["retired"].save()
    grant = discount_rewards["free_month"]
    grant.grant_feature, grant.duration, grant.duration_months, grant.promo_codes = (
        catalogue["messages"],
        "months",
        1,
        ["BONUS100"],
    )
    grant.save()
    return discount_rewards


def test_rewards_redeem_applies_a_discount_code(api, customer, promo_rewards):
    answer = _ok(api.post("rewards.redeem", {"code": "SPRING20", "customer_id": "acme_corp"}))

    assert answer == {"reward_id": "twenty_off", "entitlements_granted": []}
    applied = customer.customer_rewards.get()
    assert (applied.reward.reward_id, applied.expires_at is not None) == ("twenty_off", True)
    discounts = _ok(api.post("customers.get", {"customer_id": "acme_corp", "expand": ["rewards"]}))["rewards"]
    assert [d["id"] for d in discounts["discounts"]] == ["twenty_off"]


def test_rewards_redeem_grants_a_feature_grants_units(api, customer, promo_rewards):
    answer = _ok(api.post("rewards.redeem", {"code": "BONUS100", "customer_id": "acme_corp"}))

    assert answer == {"reward_id": "free_month", "entitlements_granted": [{"feature_id": "messages", "balance": 100}]}
    got = _ok(api.post("customers.get", {"customer_id": "acme_corp"}))
    assert got["balances"]["messages"]["granted"] == 200  # the free plan's 100 and the grant's 100
    assert AuditEntry.objects.filter(action="reward.apply", customer=customer).count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"code": "NOPE", "customer_id": "acme_corp"}, 404, "promo_code_not_found"),
        ({"code": "OLD50", "customer_id": "acme_corp"}, 404, "promo_code_not_found"),
        ({"code": "SPRING20", "customer_id": "nobody"}, 404, "customer_not_found"),
        ({"code": "SPRING20"}, 422, "invalid_inputs"),
        ({"code": "", "customer_id": "acme_corp"}, 422, "invalid_inputs"),
    ],
)
def test_rewards_redeem_refuses_bad_input_and_changes_nothing(api, customer, promo_rewards, body, status, code):
    entries = AuditEntry.objects.count()

    response = api.post("rewards.redeem", body)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert (customer.customer_rewards.count(), AuditEntry.objects.count()) == (0, entries)


def test_rewards_redeem_twice_is_a_409_and_grants_nothing_more(api, customer, promo_rewards):
    _ok(api.post("rewards.redeem", {"code": "BONUS100", "customer_id": "acme_corp"}))
    balances = customer.balances.count()

    again = api.post("rewards.redeem", {"code": "BONUS100", "customer_id": "acme_corp"})

    assert (again.status_code, again.json()["code"]) == (409, "reward_already_applied")
    assert customer.balances.count() == balances


def test_rewards_redeem_is_bound_to_the_keys_environment(live_api, customer, promo_rewards):
    response = live_api.post("rewards.redeem", {"code": "SPRING20", "customer_id": "acme_corp"})

    assert response.json() == {"message": "Customer acme_corp not found", "code": "customer_not_found", "env": "live"}
    assert response.status_code == 404
    assert not customer.customer_rewards.exists()


@pytest.mark.django_db(transaction=True)
def test_python_client_redeems_a_promo_code(live_server, sandbox_key, customer, promo_rewards):
    _, raw = sandbox_key
    with Autumn(secret_key=raw, server_url=live_server.url, fail_open=False) as autumn:
        redeemed = autumn.rewards.redeem_code(code="BONUS100", customer_id="acme_corp")
    assert isinstance(redeemed, RedeemRewardCodeResponse)
    assert redeemed.reward_id == "free_month"
    assert [(e.feature_id, e.balance) for e in redeemed.entitlements_granted] == [("messages", 100)]


# --- rewards.update ------------------------------------------------------------------------------


def test_rewards_update_renames_a_coupon_and_replaces_its_codes(api, promo_rewards):
    answer = _ok(
        api.post(
            "rewards.update",
            {"reward_id": "twenty_off", "coupon": {"name": "Spring sale", "promo_codes": [{"code": "SPRING24"}]}},
        )
    )

    assert (answer["coupon"]["name"], [c["code"] for c in answer["coupon"]["promo_codes"]]) == (
        "Spring sale",
        ["SPRING24"],
    )
    reward = Reward.objects.get(reward_id="twenty_off")
    assert (reward.name, reward.promo_codes, reward.value) == ("Spring sale", ["SPRING24"], Decimal(20))
    entry = AuditEntry.objects.get(action="reward.update")
    assert entry.before == {"name": "20% off", "promo_codes": ["SPRING20"]}


def test_rewards_update_replaces_a_feature_grants_grant(api, promo_rewards):
    body = {"reward_id": "free_month", "feature_grant": {"grants": [{"feature_id": "api_calls", "included": 50}]}}

    answer = _ok(api.post("rewards.update", body))

    assert answer["feature_grant"]["grants"] == [{"feature_id": "api_calls", "included": 50, "expiry": None}]
    reward = Reward.objects.get(reward_id="free_month")
    assert (reward.grant_feature.feature_id, reward.value, reward.duration_months) == ("api_calls", Decimal(50), None)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reward_id": "nope", "coupon": {"name": "x"}}, 404, "reward_not_found"),
        ({"reward_id": "twenty_off", "coupon": {"value": 30}}, 422, "not_supported"),
        ({"reward_id": "twenty_off", "coupon": {"plan_ids": ["pro"]}}, 422, "not_supported"),
        ({"reward_id": "twenty_off", "feature_grant": {"name": "x"}}, 422, "invalid_inputs"),
        ({"reward_id": "twenty_off", "coupon": {"promo_codes": [{"code": "BONUS100"}]}}, 409, "duplicate_promo_code"),
        (
            {"reward_id": "free_month", "feature_grant": {"grants": [{"feature_id": "nope", "included": 1}]}},
            404,
            "feature_not_found",
        ),
    ],
)
def test_rewards_update_refuses_bad_input_and_changes_nothing(api, promo_rewards, body, status, code):
    before = list(Reward.objects.order_by("pk").values())

    response = api.post("rewards.update", body)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert list(Reward.objects.order_by("pk").values()) == before
    assert not AuditEntry.objects.filter(action="reward.update").exists()


@pytest.mark.django_db(transaction=True)
def test_python_client_updates_a_reward(live_server, sandbox_key, promo_rewards):
    _, raw = sandbox_key
    with Autumn(secret_key=raw, server_url=live_server.url, fail_open=False) as autumn:
        updated = autumn.rewards.update(reward_id="twenty_off", coupon={"name": "Spring sale"})
    assert updated.coupon.name == "Spring sale"
    assert Reward.objects.get(reward_id="twenty_off").name == "Spring sale"
