"""Custom products: the permanent alternative to a balance edit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Balance, CustomerProduct, Price, Product
from billing.services.balances import balance_set
from billing.services.products import product_attach, product_customize
from billing.services.track import balance_track
from customers.errors import ServiceError
from customers.models import AuditEntry
from tests.helpers import customize_basis, page_text


@pytest.fixture
def acme_on_pro(customer, catalogue):
    cp = product_attach(customer=customer, product=catalogue["pro"], actor=None, stripe_subscription_id="sub_1")
    balance_track(customer=customer, feature=catalogue["messages"], value=1200, actor=None)
    return cp


def url(cp) -> str:
    return f"/customers/{cp.customer.customer_id}/products/{cp.pk}/customize/"


def test_custom_product_takes_the_place_of_the_original(acme_on_pro, customer, catalogue, ops):
    messages_before = Balance.objects.get(customer_product=acme_on_pro, feature=catalogue["messages"])
    balance_set(balance=messages_before, new_balance=4000, actor=ops, reason="temporary bump")

    new_cp = product_customize(
        customer=customer,
        customer_product=acme_on_pro,
        actor=ops,
        reason="enterprise deal",
        items=[
            {"feature": catalogue["messages"], "included": Decimal(10000)},
            {"feature": catalogue["api_calls"], "included": Decimal(500), "interval": "month"},
        ],
    )

    custom = new_cp.product
    assert custom.is_custom and custom.custom_for == customer and custom.base_product == catalogue["pro"]
    assert (custom.product_id, custom.name, custom.version) == ("pro", "Pro", 1)
    assert {(i.feature.feature_id, i.included) for i in custom.items.all()} == {
        ("messages", 10000),
        ("seats", 10),
        ("sso", 0),
        ("api_calls", 500),
    }
    assert list(custom.prices.values_list("type", "amount")) == [("fixed", 9900)]
    acme_on_pro.refresh_from_db()
    assert acme_on_pro.status == "expired" and acme_on_pro.stripe_subscription_id == ""
    assert (new_cp.status, new_cp.started_at, new_cp.current_period_end, new_cp.stripe_subscription_id) == (
        "active",
        acme_on_pro.started_at,
        acme_on_pro.current_period_end,
        "sub_1",
    )
    messages = Balance.objects.get(customer_product=new_cp, feature=catalogue["messages"])
    # Usage so far is carried over, the reset date stays, the temporary edit gives way to the new allowance.
    assert (messages.allowance, messages.usage, messages.remaining) == (10000, 1200, 8800)
    assert messages.next_reset_at == messages_before.next_reset_at
    assert Balance.objects.get(customer_product=new_cp, feature=catalogue["api_calls"]).remaining == 500
    assert not Balance.objects.filter(customer_product=acme_on_pro).exists()
    actions = list(
        AuditEntry.objects.filter(customer=customer, reason="enterprise deal")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["product.customize", "product.attach"]
    entry = AuditEntry.objects.get(action="product.customize")
    assert entry.before["items"]["messages"] == 5000 and entry.after["items"]["messages"] == 10000


def test_custom_product_is_for_that_customer_only(acme_on_pro, customer, other_customer, catalogue, ops):
    new_cp = product_customize(
        customer=customer,
        customer_product=acme_on_pro,
        actor=ops,
        reason="deal",
        items=[{"feature": catalogue["messages"], "included": 6000}],
    )

    with pytest.raises(ServiceError, match="belongs to another customer"):
        product_attach(customer=other_customer, product=new_cp.product, actor=ops)


def test_customizing_again_makes_a_new_version(acme_on_pro, customer, catalogue, ops):
    first = product_customize(
        customer=customer,
        customer_product=acme_on_pro,
        actor=ops,
        reason="deal",
        items=[{"feature": catalogue["messages"], "included": 6000}],
    )
    second = product_customize(
        customer=customer,
        customer_product=first,
        actor=ops,
        reason="bigger deal",
        items=[{"feature": catalogue["messages"], "included": 7000}],
    )

    assert second.product.version == 2 and second.product.base_product == catalogue["pro"]
    assert Balance.objects.get(customer_product=second, feature=catalogue["messages"]).remaining == 7000 - 1200


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "Nothing to change"),
        ([{"feature": "messages", "included": 5000}], "Nothing to change"),
        ([{"feature": "messages", "included": -1}], "must not be negative"),
        ([{"feature": "messages", "included": "NaN"}], "must be a number"),
        ([{"feature": "messages", "included": 1}, {"feature": "messages", "included": 2}], "listed twice"),
        ([{"feature": "api_calls", "included": 5, "interval": "fortnight"}], "Unknown reset interval"),
    ],
)
def test_customize_refuses_bad_changes(acme_on_pro, customer, catalogue, ops, items, message):
    items = [{**i, "feature": catalogue[i["feature"]]} for i in items]
    with pytest.raises(ServiceError, match=message):
        product_customize(customer=customer, customer_product=acme_on_pro, actor=ops, reason="x", items=items)
    assert not Product.objects.filter(custom_for=customer).exists()
    acme_on_pro.refresh_from_db()
    assert acme_on_pro.status == "active"


def test_customize_an_add_on_keeps_the_plan(customer, catalogue, ops):
    addon = product_attach(customer=customer, product=catalogue["seats_addon"], actor=None)

    new_cp = product_customize(
        customer=customer,
        customer_product=addon,
        actor=ops,
        reason="more seats",
        items=[{"feature": catalogue["seats"], "included": 25}],
    )

    assert new_cp.product.is_add_on
    live = CustomerProduct.objects.filter(customer=customer, status="active")
    assert sorted(cp.product.product_id for cp in live) == ["free", "seats_addon"]
    assert Price.objects.filter(product=new_cp.product, amount=2000).exists()


# --- the dashboard form -------------------------------------------------------------------------------


def test_customize_form_shows_the_items_and_creates_the_custom_product(ops_client, acme_on_pro, catalogue):
    form = page_text(ops_client.get(url(acme_on_pro)))

    response = ops_client.post(
        url(acme_on_pro),
        {
            "included_messages": "10000",
            "included_seats": "10",
            "add_feature": catalogue["api_calls"].pk,
            "add_included": "2500",
            "add_interval": "month",
            "reason": "enterprise deal",
            "expected": customize_basis(acme_on_pro),
        },
    )

    assert "Customize Pro" in form and 'name="included_messages"' in form and 'value="5000"' in form
    assert "Add a feature Pro lacks" in form and ">Create custom product</button>" in form
    assert response.status_code == 302 and response.url == "/customers/acme_corp/"
    new_cp = CustomerProduct.objects.get(customer=acme_on_pro.customer, status="active", product__product_id="pro")
    assert new_cp.product.is_custom
    assert Balance.objects.get(customer_product=new_cp, feature=catalogue["api_calls"]).allowance == 2500


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"included_messages": "5000", "included_seats": "10", "reason": "x"}, "Nothing to change"),
        ({"included_messages": "lots", "included_seats": "10", "reason": "x"}, "Messages's allowance must be a number"),
        ({"included_messages": "-3", "included_seats": "10", "reason": "x"}, "must not be negative"),
        ({"included_messages": "6000", "included_seats": "10", "reason": ""}, "A reason is required."),
        (
            {"included_messages": "5000", "included_seats": "10", "add_included": "5", "reason": "x"},
            "Choose the feature to add.",
        ),
    ],
)
def test_customize_form_refuses_bad_input(ops_client, acme_on_pro, data, message):
    response = ops_client.post(url(acme_on_pro), {**data, "expected": customize_basis(acme_on_pro)})

    assert response.status_code == 422 and message in page_text(response)
    acme_on_pro.refresh_from_db()
    assert acme_on_pro.status == "active"
    assert not Product.objects.filter(custom_for=acme_on_pro.customer).exists()


def test_expired_product_cannot_be_customized(ops_client, acme_on_pro, customer, catalogue):
    product_attach(customer=customer, product=catalogue["scale"], actor=None)  # replaces Pro

    assert ops_client.get(url(acme_on_pro)).status_code == 404


def test_the_balance_popups_last_edits_follow_the_balance_across_customize(ops_client, customer, catalogue, ops):
    messages = catalogue["messages"]
    seen = []
    for edit, included in [("refund for the outage", 300), ("second edit", 400)]:
        balance = Balance.objects.get(customer=customer, feature=messages)
        seen.append(balance.pk)
        balance_set(balance=balance, new_balance=80, actor=ops, reason=edit)
        product_customize(
            customer=customer,
            customer_product=CustomerProduct.objects.get(customer=customer, status="active"),
            items=[{"feature": messages, "included": included}],
            actor=ops,
            reason="annual deal",
        )
    now = Balance.objects.get(customer=customer, feature=messages)
    assert now.pk not in seen and now.earlier_ids == seen

    popup = page_text(ops_client.get(f"/customers/acme_corp/balances/{now.pk}/edit/"))
    assert "refund for the outage" in popup and "second edit" in popup
    assert "No edits yet." not in popup
