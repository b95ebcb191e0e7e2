"""The Overview page, for every role: customers in overage by feature, trials ending this week, past-due
plans, the largest usage this cycle and the jobs running, each a link into the filtered list or the job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Balance, CustomerProduct
from billing.services import bulk
from billing.services.plans import GRANT_FREE, plan_attach
from customers.services.customers import customer_create
from tests.html import element, page_of, text


@pytest.fixture
def busy_env(catalogue, ops):
    over = customer_create(env="sandbox", customer_id="over", actor=None, name="Over Co")
    plan_attach(customer=over, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="x")
    Balance.objects.filter(customer=over, feature=catalogue["api_calls"]).update(remaining=-500)
    trial = customer_create(env="sandbox", customer_id="trial", actor=None, name="Trial Co")
    CustomerProduct.objects.filter(customer=trial).update(
        status="trialing", trial_ends_at=timezone.now() + timedelta(days=3)
    )
    late = customer_create(env="sandbox", customer_id="late", actor=None, name="Late Co")
    CustomerProduct.objects.filter(customer=late).update(status="past_due")
    live = customer_create(env="live", customer_id="live_over", actor=None, name="Live Co")
    plan_attach(customer=live, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="x")
    Balance.objects.filter(customer=live, feature=catalogue["api_calls"]).update(remaining=-9)
    job = bulk.bulk_job_start(
        env="sandbox",
        customers=over.__class__.objects.filter(pk=over.pk),
        got=bulk.bulk_input(bulk.ADD_BALANCE, {"feature": "messages", "amount": "5"}),
        actor=ops,
        reason="x",
    )
    return {"job": job}


@pytest.mark.parametrize("role", ["ops", "support", "viewer"])
def test_every_role_sees_what_needs_a_look_each_a_link_into_the_list(client, request, busy_env, role):
    client.force_login(request.getfixturevalue(role))

    page = page_of(client.get("/overview/"))

    overage = element(page, "overview-overage")
    assert text(overage) == "Customers in overage Feature Customers API calls 1"  # sandbox's only
    assert 'href="/customers/?feature=api_calls&amp;balance=overage"' in overage
    trials = element(page, "overview-trials")
    assert "Trial Co" in text(trials) and 'href="/customers/?status=trialing"' in trials
    past_due = element(page, "overview-past-due")
    assert "Late Co" in text(past_due) and 'href="/customers/?status=past_due"' in past_due
    usage = element(page, "overview-usage")
    assert text(usage).startswith("Largest usage this cycle Customer Feature Used Of Over Co API calls 100,500")
    assert 'href="/customers/?feature=api_calls&amp;sort=-usage"' in usage
    assert f'href="/jobs/{busy_env["job"].pk}/"' in element(page, "overview-jobs")
    assert "Live Co" not in page


def test_the_overview_says_so_when_nothing_needs_a_look(ops_client, catalogue):
    page = text(page_of(ops_client.get("/overview/")))
    assert "Nobody is in overage." in page and "No trial ends this week." in page
    assert "No plan is past due." in page and "No job is running." in page
