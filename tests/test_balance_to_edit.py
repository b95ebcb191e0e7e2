"""Which balance an edit changes (billing.selectors.balance_to_edit): the one rule behind balances.update and
.delete, the 1.2 /usage and the bulk set and add actions."""

from __future__ import annotations

import pytest

from billing.models import Balance
from billing.selectors import PREFER_GRANT, PREFER_PLAN, balance_to_edit
from billing.services.balances import balance_create
from customers.errors import ServiceError


@pytest.fixture
def plan_and_grant(customer, catalogue, ops):
    """Acme's free plan balance of messages, and a grant of messages named "promo" beside it."""
    plan = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    grant = balance_create(
        customer=customer, feature=catalogue["messages"], actor=ops, granted=50, api_id="promo", reason="Promo"
    )
    return plan, grant


def test_one_balance_of_the_feature_is_the_one_edited(customer, catalogue):
    plan = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    assert balance_to_edit(customer, catalogue["messages"]) == plan


def test_several_balances_are_refused_naming_each_unless_the_caller_says_which(customer, catalogue, plan_and_grant):
    plan, grant = plan_and_grant
    with pytest.raises(ServiceError) as refused:
        balance_to_edit(customer, catalogue["messages"])
    assert (refused.value.status, refused.value.code) == (409, "multiple_balances")
    assert f"bal_{plan.pk}, promo" in refused.value.message
    assert balance_to_edit(customer, catalogue["messages"], balance_id="promo") == grant
    assert balance_to_edit(customer, catalogue["messages"], interval="month") == plan


def test_a_delete_means_the_grant_and_a_bulk_edit_the_plan_balance(customer, catalogue, plan_and_grant):
    plan, grant = plan_and_grant
    assert balance_to_edit(customer, catalogue["messages"], prefer=PREFER_GRANT) == grant
    assert balance_to_edit(customer, catalogue["messages"], prefer=PREFER_PLAN) == plan


def test_no_balance_is_not_found_and_an_unlimited_one_has_no_number_to_edit(customer, catalogue, ops):
    with pytest.raises(ServiceError) as missing:
        balance_to_edit(customer, catalogue["messages"], balance_id="nothing_here")
    assert (missing.value.status, missing.value.code) == (404, "balance_not_found")
    balance_create(customer=customer, feature=catalogue["seats"], actor=ops, unlimited=True, reason="Unlimited")
    assert balance_to_edit(customer, catalogue["seats"]).unlimited
    with pytest.raises(ServiceError) as unlimited:
        balance_to_edit(customer, catalogue["seats"], limited=True)
    assert (unlimited.value.status, unlimited.value.code) == (409, "balance_unlimited")
