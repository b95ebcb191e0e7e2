"""The actions on the customer page: which controls each role sees, and what htmx gets back after an action."""

from __future__ import annotations

import re

import pytest

from billing.models import Balance, CustomerProduct
from billing.services.products import product_attach
from billing.services.track import balance_track
from tests.helpers import CONTACT, customize_basis, page_text
from tests.helpers import DashboardClient as Client

HTMX = {"HTTP_HX_REQUEST": "true"}
PAGE = "/customers/acme_corp/"


def oob(html: str, tag: str, element_id: str) -> str:
    """The element htmx swaps out of band into #element_id (empty if there is none)."""
    match = re.search(rf'<{tag} hx-swap-oob="true" id="{element_id}".*?</{tag}>', html, re.S)
    return match.group(0) if match else ""


def controls(html: str) -> dict[str, bool]:
    return {
        "balance": re.search(r'href="/customers/acme_corp/balances/\d+/edit/"', html) is not None,
        "settings": 'id="settings-menu"' in html and ">Delete</a>" in html,
        "coupon": ">Add Coupon</a>" in html,
        "remove reward": re.search(r'href="/customers/acme_corp/rewards/\d+/remove/"', html) is not None,
        "details": "/details/edit/?field=" in html,
        "customize": re.search(r'href="/customers/acme_corp/products/\d+/customize/"', html) is not None,
    }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", set()),
        ("support", {"balance"}),
        ("ops", {"balance", "settings", "coupon", "remove reward", "details", "customize"}),
        ("superuser", {"balance", "settings", "coupon", "remove reward", "details", "customize"}),
    ],
)
def test_page_shows_only_the_controls_the_role_may_use(request, customer, discount_rewards, role, expected):
    from billing.services.rewards import reward_apply

    reward_apply(customer=customer, reward=discount_rewards["twenty"], actor=None)
    client = Client()
    client.force_login(request.getfixturevalue(role))

    html = page_text(client.get(PAGE))

    assert {name for name, shown in controls(html).items() if shown} == expected


def test_controls_open_popups_with_htmx_and_still_have_an_href(ops_client, customer, discount_rewards):
    html = page_text(ops_client.get(PAGE))
    balance = Balance.objects.get(customer=customer, feature__feature_id="messages")

    url = f"/customers/acme_corp/balances/{balance.pk}/edit/"
    assert f'href="{url}" hx-get="{url}" hx-target="body" hx-swap="beforeend"' in html
    assert 'href="/customers/acme_corp/rewards/add/" hx-get="/customers/acme_corp/rewards/add/"' in html
    assert 'href="/customers/acme_corp/delete/" hx-get="/customers/acme_corp/delete/"' in html
    assert (
        'href="/customers/acme_corp/details/edit/?field=email" hx-get="/customers/acme_corp/details/edit/'
        '?field=email" hx-target="closest dl"'
    ) in html


def test_balance_update_with_htmx_refreshes_row_graph_invoice_and_activity(ops_client, acme_on_scale, catalogue):
    api_calls = Balance.objects.get(customer=acme_on_scale, feature=catalogue["api_calls"])
    balance_track(customer=acme_on_scale, feature=catalogue["api_calls"], value=10, actor=None)

    response = ops_client.post(
        f"/customers/acme_corp/balances/{api_calls.pk}/edit/",
        {"mode": "set", "value": "-3000", "reason": "usage missed by the importer", "expected_remaining": "99990"},
        **HTMX,
    )

    html = page_text(response)
    assert response.status_code == 200 and "<dialog" not in html  # the popup is replaced by nothing
    row = oob(html, "tbody", "balance-row-api_calls")
    assert '<template><tbody hx-swap-oob="true" id="balance-row-api_calls"' in html  # a row needs a <template>
    assert "−3,000" in row and 'class="spark"' in row
    assert "manual edit" in row  # the graph marks the edit
    invoice = oob(html, "section", "section-upcoming-invoice")
    assert "API calls overage" in invoice and "$253.00" in invoice
    assert "usage missed by the importer" in oob(html, "section", "section-sidebar-activity")
    assert '<p class="toast" role="status">API calls balance is now −3,000.</p>' in html


def test_reward_add_with_htmx_refreshes_rewards_and_invoice(ops_client, customer, catalogue, discount_rewards):
    product_attach(customer=customer, product=catalogue["pro"], actor=None)

    response = ops_client.post("/customers/acme_corp/rewards/add/", {"reward": discount_rewards["twenty"].pk}, **HTMX)

    html = page_text(response)
    rewards = oob(html, "section", "section-sidebar-rewards")
    assert "20% off" in rewards and "3 months" in rewards
    invoice = oob(html, "section", "section-upcoming-invoice")
    assert "−$19.80" in invoice and "$79.20" in invoice


def test_detail_update_with_htmx_swaps_the_details_back_in_place(ops_client, customer):
    response = ops_client.post("/customers/acme_corp/details/edit/?field=name", {**CONTACT, "name": "Acme Ltd"}, **HTMX)

    html = page_text(response)
    assert response.headers["HX-Retarget"] == "#section-sidebar-details"
    assert response.headers["HX-Reswap"] == "outerHTML"
    assert html.lstrip().startswith('<section id="section-sidebar-details"')
    assert "<h1>Acme Ltd</h1>" in oob(html, "header", "section-customer-head")


def test_cancel_of_an_inline_edit_puts_the_details_back(ops_client, customer):
    response = ops_client.get("/customers/acme_corp/details/edit/", **HTMX)

    assert response.headers["HX-Retarget"] == "#section-sidebar-details"
    assert page_text(response).lstrip().startswith('<section id="section-sidebar-details"')


def test_customize_with_htmx_refreshes_products_and_features(ops_client, customer, catalogue):
    cp = CustomerProduct.objects.get(customer=customer, status="active")

    response = ops_client.post(
        f"/customers/acme_corp/products/{cp.pk}/customize/",
        {"included_messages": "750", "reason": "pilot", "expected": customize_basis(cp)},
        **HTMX,
    )

    html = page_text(response)
    assert '<span class="tag">custom</span>' in oob(html, "section", "section-products")
    assert "750" in oob(html, "section", "section-features")
