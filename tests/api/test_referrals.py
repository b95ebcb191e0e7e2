"""referral_programs.create/get/update/delete/list and referrals.create_code/redeem_code, read through
autumn_sdk's own models against a live server: a program of the key's environment, a code per customer and
program, redemptions that give the program's reward (through the rewards service) to who the program says,
now or at the redeemer's checkout, and Autumn's refusals."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from autumn_sdk import Autumn
from autumn_sdk.errors import AutumnDefaultError

from billing.models import Balance, CustomerReward, ReferralCode, ReferralProgram, ReferralRedemption
from billing.services.products import product_attach
from customers.models import AuditEntry
from customers.services.customers import customer_create


@pytest.fixture
def grant_reward(discount_rewards, catalogue):
    grant = discount_rewards["free_month"]
    grant.grant_feature = catalogue["messages"]
    grant.save()
    return grant


@pytest.fixture
def autumn(live_server, transactional_db, sandbox_key, customer, other_customer, grant_reward):
    _, raw = sandbox_key
    with Autumn(secret_key=raw, server_url=live_server.url, fail_open=False) as client:
        yield client


def _refused(call) -> tuple[int, dict]:
    with pytest.raises(AutumnDefaultError) as refused:
        call()
    return refused.value.status_code, json.loads(refused.value.body)


def _messages_granted(customer) -> Decimal:
    return sum(
        (b.granted for b in Balance.objects.filter(customer=customer, feature__feature_id="messages")), Decimal(0)
    )


def test_a_referral_program_is_created_read_changed_and_deleted(autumn):
    created = autumn.referrals.create_program(
        id="friends", reward_id="free_month", redeem_on="customer_creation", received_by="all", max_redemptions=5
    )
    assert (created.id, created.reward_id, created.redeem_on, created.received_by, created.max_redemptions) == (
        "friends",
        "free_month",
        "customer_creation",
        "all",
        5,
    )
    assert autumn.referrals.get_program(referral_program_id="friends").model_dump() == created.model_dump()
    assert [p.id for p in autumn.referrals.list_programs().list] == ["friends"]

    updated = autumn.referrals.update_program(
        referral_program_id="friends", redeem_on="checkout", plan_ids=["pro"], received_by="referrer"
    )
    assert (updated.redeem_on, updated.plan_ids, updated.received_by, updated.max_redemptions) == (
        "checkout",
        ["pro"],
        "referrer",
        5,
    )
    cleared = autumn.referrals.update_program(
        referral_program_id="friends", redeem_on="customer_creation", plan_ids=None, max_redemptions=None
    )
    assert (cleared.plan_ids, cleared.max_redemptions) == (None, None)

    assert autumn.referrals.delete_program(referral_program_id="friends").success is True
    assert not ReferralProgram.objects.exists()
    assert list(
        AuditEntry.objects.filter(target_type="referral_program").values_list("action", flat=True).order_by("pk")
    ) == [
        "referral_program.create",
        "referral_program.update",
        "referral_program.update",
        "referral_program.delete",
    ]
    assert _refused(lambda: autumn.referrals.get_program(referral_program_id="friends"))[0] == 404


def test_a_customers_code_is_the_same_each_time_it_is_asked_for(autumn):
    autumn.referrals.create_program(
        id="friends", reward_id="free_month", redeem_on="customer_creation", received_by="all"
    )

    first = autumn.referrals.create_code(customer_id="acme_corp", program_id="friends")
    again = autumn.referrals.create_code(customer_id="acme_corp", program_id="friends")

    assert first == again and first.customer_id == "acme_corp" and len(first.code) == 6
    assert ReferralCode.objects.count() == 1
    assert autumn.referrals.create_code(customer_id="globex", program_id="friends").code != first.code


def test_redeeming_gives_both_parties_a_feature_grant_at_once(autumn, customer, other_customer):
    autumn.referrals.create_program(
        id="friends", reward_id="free_month", redeem_on="customer_creation", received_by="all"
    )
    code = autumn.referrals.create_code(customer_id="acme_corp", program_id="friends").code
    before_referrer, before_redeemer = _messages_granted(customer), _messages_granted(other_customer)

    redemption = autumn.referrals.redeem_code(code=code, customer_id="globex")

    assert (redemption.customer_id, redemption.reward_id) == ("globex", "free_month")
    assert _messages_granted(customer) == before_referrer + 100
    assert _messages_granted(other_customer) == before_redeemer + 100
    stored = ReferralRedemption.objects.get()
    assert (stored.triggered, stored.referrer_applied, stored.redeemer_applied) == (True, True, True)
    assert AuditEntry.objects.filter(action="referral.trigger", customer=other_customer).exists()


def test_a_referrer_only_discount_goes_to_the_referrer(autumn, customer, other_customer, discount_rewards):
    autumn.referrals.create_program(
        id="friends", reward_id="twenty_off", redeem_on="customer_creation", received_by="referrer"
    )
    code = autumn.referrals.create_code(customer_id="acme_corp", program_id="friends").code

    autumn.referrals.redeem_code(code=code, customer_id="globex")

    assert CustomerReward.objects.filter(customer=customer, reward__reward_id="twenty_off").exists()
    assert not CustomerReward.objects.filter(customer=other_customer).exists()


def test_a_checkout_program_rewards_when_the_redeemer_attaches_its_plan(autumn, customer, other_customer, catalogue):
    autumn.referrals.create_program(
        id="paid",
        reward_id="free_month",
        redeem_on="checkout",
        received_by="referrer",
        plan_ids=["pro"],
        max_redemptions=3,
    )
    code = autumn.referrals.create_code(customer_id="acme_corp", program_id="paid").code
    before = _messages_granted(customer)

    autumn.referrals.redeem_code(code=code, customer_id="globex")
    assert ReferralRedemption.objects.get().triggered is False
    assert _messages_granted(customer) == before

    product_attach(customer=other_customer, product=catalogue["seats_addon"], actor=None)
    assert ReferralRedemption.objects.get().triggered is False
    product_attach(customer=other_customer, product=catalogue["pro"], actor=None)

    assert ReferralRedemption.objects.get().triggered is True
    assert _messages_granted(customer) == before + 100


def test_redeeming_is_refused_as_autumn_refuses_it(autumn, customer, other_customer):
    autumn.referrals.create_program(
        id="friends", reward_id="free_month", redeem_on="customer_creation", received_by="all", max_redemptions=2
    )
    code = autumn.referrals.create_code(customer_id="acme_corp", program_id="friends").code

    assert _refused(lambda: autumn.referrals.redeem_code(code=code, customer_id="acme_corp")) == (
        400,
        {
            "message": "Customer cannot redeem their own code",
            "code": "customer_cannot_redeem_own_code",
            "env": "sandbox",
        },
    )
    assert _refused(lambda: autumn.referrals.redeem_code(code="NOPE42", customer_id="globex"))[1]["code"] == (
        "referral_code_not_found"
    )
    autumn.referrals.redeem_code(code=code, customer_id="globex")
    assert _refused(lambda: autumn.referrals.redeem_code(code=code, customer_id="globex"))[1]["code"] == (
        "customer_already_redeemed_referral_code"
    )
    customer_create(env="sandbox", customer_id="initech", actor=None)
    customer_create(env="sandbox", customer_id="hooli", actor=None)
    autumn.referrals.redeem_code(code=code, customer_id="initech")
    assert _refused(lambda: autumn.referrals.redeem_code(code=code, customer_id="hooli"))[1]["code"] == (
        "referral_code_max_redemptions_reached"
    )
    assert ReferralRedemption.objects.count() == 2


def test_a_code_of_one_environment_is_unknown_in_the_other(autumn, live_api):
    autumn.referrals.create_program(
        id="friends", reward_id="free_month", redeem_on="customer_creation", received_by="all"
    )
    code = autumn.referrals.create_code(customer_id="acme_corp", program_id="friends").code
    customer_create(env="live", customer_id="globex", actor=None)

    redeemed = live_api.post("referrals.redeem_code", {"code": code, "customer_id": "globex"})
    program = live_api.post("referral_programs.get", {"referral_program_id": "friends"})

    assert (redeemed.status_code, redeemed.json()["code"]) == (404, "referral_code_not_found")
    assert (program.status_code, program.json()["code"]) == (404, "reward_program_not_found")
    assert live_api.post("referral_programs.list", {}).json() == {"list": []}
    assert not ReferralRedemption.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reward_id": "free_month", "redeem_on": "checkout", "received_by": "all"}, 400, "invalid_request"),
        (
            {"reward_id": "free_month", "redeem_on": "checkout", "received_by": "all", "plan_ids": ["pro"]},
            400,
            "invalid_request",
        ),
        ({"reward_id": "nope", "redeem_on": "customer_creation", "received_by": "all"}, 404, "reward_not_found"),
        ({"reward_id": "free_month", "redeem_on": "later", "received_by": "all"}, 422, "invalid_inputs"),
        (
            {"reward_id": "free_month", "redeem_on": "customer_creation", "received_by": "all", "internal_id": "x"},
            422,
            "not_supported",
        ),
        (
            {"reward_id": "free_month", "redeem_on": "customer_creation", "received_by": "all", "max_redemptions": 0},
            422,
            "invalid_inputs",
        ),
    ],
)
def test_referral_programs_create_refuses_bad_input_and_changes_nothing(api, grant_reward, body, status, code):
    response = api.post("referral_programs.create", {"id": "friends", **body})

    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert not ReferralProgram.objects.exists()


def test_a_taken_program_id_is_refused_and_a_redeemed_program_is_kept(api, grant_reward, customer, other_customer):
    body = {"id": "friends", "reward_id": "free_month", "redeem_on": "customer_creation", "received_by": "all"}
    assert api.post("referral_programs.create", body).status_code == 200
    assert api.post("referral_programs.create", body).status_code == 409
    code = api.post("referrals.create_code", {"customer_id": "acme_corp", "program_id": "friends"}).json()["code"]
    api.post("referrals.redeem_code", {"code": code, "customer_id": "globex"})

    deleted = api.post("referral_programs.delete", {"referral_program_id": "friends"})

    assert (deleted.status_code, deleted.json()["code"]) == (409, "referral_program_in_use")
    assert ReferralProgram.objects.filter(program_id="friends").exists()
