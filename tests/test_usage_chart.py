"""A feature's usage as a chart (server-rendered SVG, readable without JavaScript): usage this cycle as a line,
the allowance as a line, overage shaded, a date axis, and a range of 7, 30 or 90 days or this cycle."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import rollup
from billing.models import DailyCreditDraw
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.formatting import format_day
from customers.services.customers import customer_create
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


# A credit pool's chart: AI credits, drawn by messages at 0.2 (after their own 10 a month) and images at 0.6.


def _track(customer, catalogue, feature_id, value, *, days_ago=0):
    when = timezone.now() - timedelta(days=days_ago)
    balance_track(customer=customer, feature=catalogue[feature_id], value=Decimal(value), actor=None, timestamp=when)


def _day_titles(chart: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<g class="day"><title>([^<]*)</title>', chart)]


def test_a_credit_pools_chart_splits_its_credits_by_the_features_that_drew_them(
    client, viewer, ai_customer, credits_catalogue
):
    _track(ai_customer, credits_catalogue, "images", 5)  # 5 × 0.6 = 3 credits
    _track(ai_customer, credits_catalogue, "messages", 15)  # 10 from their own balance, 5 × 0.2 = 1 credit
    _track(ai_customer, credits_catalogue, "ai_credits", 2)  # tracked on the pool itself
    _track(ai_customer, credits_catalogue, "images", 2, days_ago=1)  # 1.2 credits yesterday
    client.force_login(viewer)

    page = page_of(client.get("/customers/acme_corp/usage/ai_credits/"))

    chart = element(page, "usage-chart")
    assert text(element(page, "chart-split-legend")) == "Images 4.2 Tracked directly 2 Messages 1"
    rows = [text(row) for row in re.findall(r"<tr>.*?</tr>", element(page, "chart-split"))]
    assert rows == [
        "Feature Credits Share",
        "Images 4.2 58 %",
        "Tracked directly 2 28 %",
        "Messages 1 14 %",
        "Total 7.2",
    ]
    assert chart.count('class="series s') == 3  # a stacked area each, in its own colour
    assert {c for c in re.findall(r'class="series (s\d)"', chart)} == {"s0", "s1", "s2"}
    today, yesterday = timezone.localdate(), timezone.localdate() - timedelta(days=1)
    titles = _day_titles(chart)
    assert titles[-1].startswith(f"{format_day(today)}: 6 used (Images 3; Tracked directly 2; Messages 1), ")
    assert titles[-2].startswith(f"{format_day(yesterday)}: 1.2 used (Images 1.2), ")
    assert titles[0] == f"{format_day(today - timedelta(days=29))}: 0 used, 0 this cycle"
    label = html.unescape(re.search(r'aria-label="([^"]*)"', chart).group(1))
    assert label.endswith("credits by feature: Images 4.2, Tracked directly 2, Messages 1")
    assert 'class="allowance"' in chart and "allowance 100" in text(element(page, "chart-legend"))


def test_what_each_feature_drew_is_what_was_tracked_times_its_cost(client, viewer, ai_customer, credits_catalogue):
    _track(ai_customer, credits_catalogue, "images", 9)
    _track(ai_customer, credits_catalogue, "images", -2)  # a refund gives its credits back
    _track(ai_customer, credits_catalogue, "messages", 10)  # exactly their own 10: nothing drawn
    _track(ai_customer, credits_catalogue, "messages", 35)
    client.force_login(viewer)

    page = page_of(client.get("/customers/acme_corp/usage/ai_credits/"))

    assert text(element(page, "chart-split-legend")) == "Messages 7 Images 4.2"  # 35 × 0.2, 7 × 0.6


def test_the_split_counts_only_the_customers_own_environment(client, ops, ai_customer, credits_catalogue):
    live = customer_create(env="live", customer_id="acme_corp", actor=None, name="Acme Live")
    product_attach(customer=live, product=credits_catalogue["ai"], actor=ops)
    _track(ai_customer, credits_catalogue, "images", 5)
    _track(live, credits_catalogue, "images", 10)
    _track(live, credits_catalogue, "messages", 20)
    client.force_login(ops)

    sandbox = page_of(client.get("/customers/acme_corp/usage/ai_credits/"))
    client.post("/env/", {"env": "live"})
    live_page = page_of(client.get("/customers/acme_corp/usage/ai_credits/"))

    assert text(element(sandbox, "chart-split-legend")) == "Images 3"
    assert text(element(live_page, "chart-split-legend")) == "Images 6 Messages 2"


def test_the_range_chips_narrow_the_split(client, viewer, ai_customer, credits_catalogue):
    _track(ai_customer, credits_catalogue, "images", 5, days_ago=10)
    _track(ai_customer, credits_catalogue, "messages", 20)
    client.force_login(viewer)

    month = page_of(client.get("/customers/acme_corp/usage/ai_credits/?range=30"))
    week = page_of(client.get("/customers/acme_corp/usage/ai_credits/?range=7"))
    cycle = client.get("/customers/acme_corp/usage/ai_credits/?range=cycle")

    assert text(element(month, "chart-split-legend")) == "Images 3 Messages 2"
    assert text(element(week, "chart-split-legend")) == "Messages 2"
    assert element(week, "usage-chart").count('class="day"') == 7
    assert 'aria-current="true">7 days</a>' in week
    assert cycle.status_code == 200 and "Messages 2" in text(element(page_of(cycle), "chart-split-legend"))


def test_a_plain_features_chart_has_no_split(client, viewer, ai_customer, credits_catalogue):
    _track(ai_customer, credits_catalogue, "messages", 15)
    client.force_login(viewer)

    page = page_of(client.get("/customers/acme_corp/usage/messages/"))

    chart = element(page, "usage-chart")
    assert 'class="series' not in chart and 'id="chart-split' not in page
    assert _day_titles(chart)[-1] == f"{format_day(timezone.localdate())}: 15 used, 15 this cycle"
    assert "credits by feature" not in chart


def test_the_split_survives_a_rollup_rebuild_and_a_time_zone_change(client, viewer, ai_customer, credits_catalogue):
    _track(ai_customer, credits_catalogue, "images", 5)
    _track(ai_customer, credits_catalogue, "messages", 20)
    client.force_login(viewer)
    before = DailyCreditDraw.objects.filter(customer=ai_customer).values_list("feature__feature_id", "value")

    assert sorted(before) == [("images", Decimal(3)), ("messages", Decimal(2))]
    rollup.rebuild()
    assert sorted(before.all()) == [("images", Decimal(3)), ("messages", Decimal(2))]
    with override_settings(TIME_ZONE="Asia/Tokyo"):  # until rebuilt, the split is summed from the draws
        page = page_of(client.get("/customers/acme_corp/usage/ai_credits/"))
    assert text(element(page, "chart-split-legend")) == "Images 3 Messages 2"


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_a_pool_charts_queries_do_not_grow_with_features_or_days(client, viewer, ai_customer, credits_catalogue):
    client.force_login(viewer)
    _track(ai_customer, credits_catalogue, "images", 5)
    one = _queries(client, "/customers/acme_corp/usage/ai_credits/?range=90")
    for days_ago in range(0, 80, 3):
        _track(ai_customer, credits_catalogue, "images", 2, days_ago=days_ago)
        _track(ai_customer, credits_catalogue, "messages", 20, days_ago=days_ago)
        _track(ai_customer, credits_catalogue, "ai_credits", 1, days_ago=days_ago)
    many = _queries(client, "/customers/acme_corp/usage/ai_credits/?range=90")
    plain = _queries(client, "/customers/acme_corp/usage/messages/?range=90")

    # session and user, the customer, the feature, the daily totals, the balance marks, the allowance; the pool's
    # split one more
    assert (one, many, plain) == (8, 8, 7)
