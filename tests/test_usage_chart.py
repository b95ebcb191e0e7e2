"""A feature's usage as a chart (server-rendered SVG, readable without JavaScript): usage this cycle as a line,
the allowance as a line, overage shaded, a date axis, and a range of 7, 30 or 90 days or this cycle."""

from __future__ import annotations

from decimal import Decimal

from billing.services.track import balance_track
from tests.html import element, page_of, text


def test_the_chart_shows_usage_against_the_allowance_with_overage_shaded_and_dates(client, viewer, customer, catalogue):
    client.force_login(viewer)
    balance_track(customer=customer, feature=catalogue["messages"], value=Decimal(60), actor=None)

    page = page_of(client.get("/customers/acme_corp/usage/messages/"))

    chart = element(page, "usage-chart")
    assert "<svg" in chart and 'role="img"' in chart and "allowance 100" in chart
    assert 'class="allowance"' in chart and 'class="used"' in chart and 'class="overage"' not in chart
    assert text(element(page, "chart-ranges")) == "7 days 30 days 90 days This cycle"
    assert 'aria-current="true">30 days</a>' in page
    assert chart.count('class="date"') >= 5  # a date axis


def test_overage_is_shaded_and_the_range_can_be_chosen(ops_client, acme_on_scale, catalogue):
    balance_track(customer=acme_on_scale, feature=catalogue["api_calls"], value=Decimal(150000), actor=None)

    week = page_of(ops_client.get("/customers/acme_corp/usage/api_calls/?range=7"))

    assert 'class="overage"' in element(week, "usage-chart") and "overage" in text(element(week, "chart-legend"))
    assert element(week, "usage-chart").count('class="day"') == 7
    assert ops_client.get("/customers/acme_corp/usage/api_calls/?range=cycle").status_code == 200
    bad = ops_client.get("/customers/acme_corp/usage/api_calls/?range=forever")
    assert bad.status_code == 400 and "Unknown range 'forever'" in text(page_of(bad))
    assert ops_client.get("/customers/acme_corp/usage/sso/").status_code == 404  # a boolean has no usage


def test_the_customer_page_links_each_graph_to_its_chart(ops_client, customer, catalogue):
    balance_track(customer=customer, feature=catalogue["messages"], value=Decimal(3), actor=None)
    page = page_of(ops_client.get("/customers/acme_corp/"))
    assert 'href="/customers/acme_corp/usage/messages/">Chart, other ranges →</a>' in page
