"""The Catalogue page: every role reads what each plan gives and costs and what each feature is, in a fixed
number of queries, with the customer counts of the environment being looked at only."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.catalogue.specs import plan_spec_of
from billing.models import CreditCost, Feature, Product, Reward
from billing.services.catalogue import catalogue_apply
from billing.services.products import product_attach
from customers.services.customers import customer_create

ROLES = ["ops", "support", "viewer", "superuser"]


@pytest.fixture
def credits(catalogue):
    credits = Feature.objects.create(
        feature_id="credits", name="Credits", type="credit_system", usage_type="single_use"
    )
    CreditCost.objects.create(credit_system=credits, metered_feature=catalogue["messages"], credit_cost=2)
    return credits


def _page(client, user) -> str:
    client.force_login(user)
    response = client.get("/catalogue/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_plans_and_features(client, request, role, customer, credits):
    page = _page(client, request.getfixturevalue(role))
    assert '<a href="/catalogue/" aria-current="page">Catalogue</a>' in page
    for text in (
        'Pro <span class="mono muted">pro</span>',
        "$99.00 / month",
        "$250.00 / month",
        "<td>100,000</td><td>every month</td><td>$1.00 per 1,000 beyond</td>",
        '<th scope="row"><a href="#feature-sso">SSO</a></th><td>Included</td>',
        "<td>10</td><td>Never resets</td><td>stops at the allowance</td>",
        '<span class="tag">Add-on</span>',
        '<span class="tag">Default</span>',
        "1 Messages = 2 credits",
        "2 Credits each",
        "Metered · allocated (seats)",
        "message_sent",
    ):
        assert text in page, text
    assert ("Django admin</a>" in page) is (role == "superuser")


def test_the_page_runs_a_fixed_number_of_queries(client, ops, customer, credits, catalogue):
    client.force_login(ops)
    client.get("/catalogue/")
    with CaptureQueriesContext(connection) as small:
        client.get("/catalogue/")
    for n in range(5):
        plan = Product.objects.create(product_id=f"extra_{n}", name=f"Extra {n}")
        plan.items.create(feature=catalogue["messages"], included=n)
        plan.prices.create(type="fixed", amount=100 * n)
        Reward.objects.create(
            reward_id=f"grant_{n}",
            name=f"Grant {n}",
            type="feature_grant",
            value=n,
            grant_feature=catalogue["messages"],
        )
    with CaptureQueriesContext(connection) as large:
        client.get("/catalogue/")
    # session, the user with the role (one query); holders, plans, items, prices; features, credit costs; rewards
    assert len(large) == len(small) == 9, [q["sql"][:80] for q in large.captured_queries]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_rewards_with_what_they_give_and_their_codes(
    client, request, role, catalogue, discount_rewards
):
    discount_rewards["twenty"].promo_codes = ["SPRING20", "VIP20"]
    discount_rewards["twenty"].save()

    page = _page(client, request.getfixturevalue(role))

    assert '<h2 id="rewards">Rewards</h2>' in page
    for text in (
        '<th scope="row">20% off</th>\n      <td class="mono">twenty_off</td>\n      <td>20% off · 3 months</td>',
        '<td class="mono">SPRING20, VIP20</td>',
        "$10.00 off · once",
        'Old promo <span class="badge expired">Retired</span>',
    ):
        assert text in page, text
    assert page.index("Free month") < page.index("Old promo")  # active ones first


def test_the_catalogue_says_when_there_are_no_rewards(client, ops, catalogue):
    assert "No rewards yet." in _page(client, ops)


def test_older_versions_show_who_is_still_on_them_in_this_environment_only(client, ops, customer, globex, catalogue):
    spec = plan_spec_of(Product.objects.prefetch_related("items__feature", "prices").get(product_id="free"))
    from dataclasses import replace

    catalogue_apply(
        features=[],
        plans=[replace(spec, items=(replace(spec.items[0], included=250),))],
        actor=None,
        env="sandbox",
        reason="test",
    )
    customer_create(env="sandbox", customer_id="newcomer", actor=None)
    product_attach(customer=customer, product=catalogue["seats_addon"], actor=None)
    page = _page(client, ops)
    assert '<span class="tag">v2</span>' in page
    assert "Older versions (1)" in page
    assert "<strong>v1</strong> · Free · 1 customer on it" in page  # acme; globex is live
    assert "Free · 1 customer on it" in page  # the newcomer on v2


def test_anonymous_visitors_are_sent_to_log_in(client, catalogue):
    response = client.get("/catalogue/")
    assert response.status_code == 302 and response.url.startswith("/login/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_viewer_follows_the_nav_to_the_catalogue_and_it_fits_at_1280_px(live_server, page, viewer, credits):
    from tests.test_browser_actions import log_in
    from tests.test_browser_plans import OVERFLOW

    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, viewer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalogue").click()
    page.wait_for_url(f"{live_server.url}/catalogue/")
    assert page.get_by_role("heading", name="Catalogue", exact=True).is_visible()
    assert page.evaluate(OVERFLOW) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.locator("#plan-pro").get_by_role("link", name="SSO").click()  # plain links, no script needed
    assert page.url.endswith("#feature-sso")


def test_after_a_new_version_attach_offers_the_newest_only(client, ops, customer, catalogue):
    from dataclasses import replace

    spec = plan_spec_of(Product.objects.prefetch_related("items__feature", "prices").get(product_id="pro"))
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    catalogue_apply(features=[], plans=[replace(spec, items=spec.items[:1])], actor=None, env="sandbox", reason="test")
    client.force_login(ops)
    popup = client.get("/customers/acme_corp/products/attach/").content.decode()
    assert "Pro (v2) · plan" in popup and "Pro · plan" not in popup


def test_admin_keeps_a_held_versions_items_and_prices_as_they_are(client, superuser, customer, catalogue):
    from tests.test_admin import form_data, post_change

    free = catalogue["free"]
    client.force_login(superuser)
    url = f"/admin/billing/product/{free.pk}/change/"
    page = client.get(url).content.decode()
    assert "Customers are on this version" in page
    assert "items-0-included" not in form_data(client.get(url))  # shown, not editable
    response = post_change(client, url, name="Free forever", **{"items-0-included": "999", "items-TOTAL_FORMS": "1"})
    assert response.status_code == 302
    free.refresh_from_db()
    assert free.name == "Free forever"  # the name changes in place, what customers get does not
    assert list(free.items.values_list("included", flat=True)) == [100]

    pro = catalogue["pro"]  # nobody is on Pro: its inlines stay editable
    assert "items-0-included" in form_data(client.get(f"/admin/billing/product/{pro.pk}/change/"))


def test_admin_keeps_a_held_versions_free_trial_as_it_is(client, superuser, customer, catalogue):
    from tests.test_admin import form_data, post_change

    free = catalogue["free"]
    client.force_login(superuser)
    url = f"/admin/billing/product/{free.pk}/change/"
    assert "trial_length" not in form_data(client.get(url))
    post_change(client, url, trial_length="30", trial_unit="day")
    free.refresh_from_db()
    assert free.trial_length is None
    pro = catalogue["pro"]  # nobody is on Pro: its trial is edited in place
    assert "trial_length" in form_data(client.get(f"/admin/billing/product/{pro.pk}/change/"))
