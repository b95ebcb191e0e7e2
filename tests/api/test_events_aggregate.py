"""events.aggregate: usage over a range in day or hour bins, grouped by a property, from the rollup
where it holds the answer and from the events where it must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import rollup
from billing.models import DailyUsage, Event
from billing.services.products import product_attach
from customers.models import AuditEntry

DAY = 86_400_000


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def midnight(days_ago: int = 0) -> datetime:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def track(api, value, *, at: datetime, feature_id="messages", customer_id="acme_corp", **extra):
    body = {"customer_id": customer_id, "feature_id": feature_id, "value": value, "timestamp": ms(at), **extra}
    response = api.post("balances.track", body)
    assert response.status_code == 200, response.content


def aggregate(api, **body):
    response = api.post("events.aggregate", {"customer_id": "acme_corp", "feature_id": "messages", **body})
    assert response.status_code == 200, response.content
    return response.json()


def test_7d_gives_a_day_bin_for_each_of_the_last_seven_days_and_the_totals(api, customer):
    track(api, 2, at=midnight(6) + timedelta(hours=3))
    track(api, 3, at=midnight(6) + timedelta(hours=20))
    track(api, 5, at=midnight(0) + timedelta(minutes=1))
    track(api, 7, at=midnight(7) + timedelta(hours=23))  # the day before the range
    body = aggregate(api, range="7d")
    assert [p["period"] for p in body["list"]] == [ms(midnight(d)) for d in range(6, -1, -1)]
    assert [p["values"]["messages"] for p in body["list"]] == [5, 0, 0, 0, 0, 0, 5]
    assert body["total"] == {"messages": {"count": 3, "sum": 10}}
    assert "grouped_values" not in body["list"][0]


def test_day_bins_are_read_from_the_daily_rollup_not_the_events(api, customer):
    track(api, 4, at=midnight(2))
    with CaptureQueriesContext(connection) as queries:
        body = aggregate(api, range="30d")
    assert body["total"]["messages"] == {"count": 1, "sum": 4}
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "billing_dailyusage" in sql
    assert "billing_event" not in sql


def test_the_rollup_counts_the_events_of_each_day_like_a_rebuild(api, customer, catalogue):
    track(api, 1, at=midnight(1))
    track(api, 2, at=midnight(1) + timedelta(hours=1))
    api.post("balances.track", {"customer_id": "acme_corp", "feature_id": "messages", "value": 1})
    kept = sorted(DailyUsage.objects.values_list("day", "value", "events"))
    rollup.rebuild()
    assert sorted(DailyUsage.objects.values_list("day", "value", "events")) == kept
    assert [row[2] for row in kept] == [2, 1]


def test_24h_gives_hour_bins_from_the_events(api, customer):
    now = timezone.now()
    track(api, 1, at=now - timedelta(minutes=1))
    track(api, 2, at=now - timedelta(hours=5))
    body = aggregate(api, range="24h")
    assert len(body["list"]) == 24
    assert body["list"][-1]["period"] == ms(now.replace(minute=0, second=0, microsecond=0))
    values = [p["values"]["messages"] for p in body["list"]]
    assert (values[-1], values[-6], sum(values)) == (1, 2, 3)


def test_group_by_a_property_gives_each_groups_values_and_bundles_the_rest_as_other(api, customer):
    at = midnight(1) + timedelta(hours=2)
    for model, value in [("gpt", 5), ("gpt", 1), ("claude", 3), ("mini", 1), ("tiny", 0.5)]:
        track(api, value, at=at, properties={"model": model})
    track(api, 2, at=at)  # no model
    body = aggregate(api, range="7d", group_by="properties.model", max_groups=2)
    day = next(p for p in body["list"] if p["period"] == ms(midnight(1)))
    assert day["values"] == {"messages": 12.5}
    assert day["grouped_values"] == {"messages": {"gpt": 6, "claude": 3, "Other": 3.5}}
    empty = next(p for p in body["list"] if p["period"] == ms(midnight(0)))
    assert empty["grouped_values"] == {"messages": {}}


def test_several_features_filter_by_and_count_measure(api, customer, catalogue):
    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    at = midnight(0) + timedelta(minutes=5)
    track(api, 10, at=at, feature_id="api_calls", properties={"region": "eu"})
    track(api, 20, at=at, feature_id="api_calls", properties={"region": "us"})
    track(api, 3, at=at, properties={"region": "eu"})
    body = aggregate(api, range="7d", feature_id=["api_calls", "messages"], filter_by={"region": "eu"})
    assert body["list"][-1]["values"] == {"api_calls": 10, "messages": 3}
    counted = aggregate(api, range="7d", feature_id=["api_calls", "messages"], measure="count")
    assert counted["list"][-1]["values"] == {"api_calls": 2, "messages": 1}
    assert counted["total"] == {"api_calls": {"count": 2, "sum": 30}, "messages": {"count": 1, "sum": 3}}


def test_custom_range_and_week_bins(api, customer):
    track(api, 2, at=datetime(2026, 3, 2, 10, tzinfo=UTC))  # a Monday
    track(api, 3, at=datetime(2026, 3, 8, 23, tzinfo=UTC))  # the Sunday after
    track(api, 4, at=datetime(2026, 3, 9, 1, tzinfo=UTC))
    start, end = ms(datetime(2026, 3, 1, tzinfo=UTC)), ms(datetime(2026, 3, 16, tzinfo=UTC))
    days = aggregate(api, custom_range={"start": start, "end": end})
    assert len(days["list"]) == 15
    weeks = aggregate(api, custom_range={"start": float(start), "end": float(end)}, bin_size="week")
    assert [(p["period"], p["values"]["messages"]) for p in weeks["list"]] == [
        (ms(datetime(2026, 2, 23, tzinfo=UTC)), 0),
        (ms(datetime(2026, 3, 2, tzinfo=UTC)), 5),
        (ms(datetime(2026, 3, 9, tzinfo=UTC)), 4),
    ]


def test_a_time_zone_counts_days_there_from_the_events(api, customer):
    track(api, 1, at=datetime(2026, 3, 2, 23, 30, tzinfo=UTC))  # already March 3rd in Berlin
    start, end = ms(datetime(2026, 3, 1, tzinfo=UTC)), ms(datetime(2026, 3, 5, tzinfo=UTC))
    body = aggregate(api, custom_range={"start": start, "end": end}, timezone="Europe/Berlin")
    march_3rd_berlin = ms(datetime(2026, 3, 2, 23, tzinfo=UTC))
    assert [p["values"]["messages"] for p in body["list"] if p["period"] == march_3rd_berlin] == [1]


def test_billing_cycle_ranges_follow_the_customers_plan_period(api, customer, catalogue):
    cp = product_attach(customer=customer, product=catalogue["pro"], actor=None)
    cp.current_period_start = midnight(10)
    cp.current_period_end = midnight(10) + timedelta(days=30)
    cp.save()
    track(api, 2, at=midnight(5))
    track(api, 3, at=midnight(15))
    assert aggregate(api, range="1bc")["total"]["messages"]["sum"] == 2
    assert aggregate(api, range="last_cycle")["total"]["messages"]["sum"] == 3
    three = aggregate(api, range="3bc")
    assert three["total"]["messages"]["sum"] == 5
    assert three["list"][0]["period"] <= ms(midnight(10) - timedelta(days=58))


def test_without_customer_id_it_adds_up_the_environments_customers_only(api, customer, other_customer, globex):
    track(api, 1, at=midnight(1))
    track(api, 2, at=midnight(1), customer_id="globex")
    response = api.post("events.aggregate", {"feature_id": "messages", "range": "7d"})
    assert response.json()["total"] == {"messages": {"count": 2, "sum": 3}}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"range": "7d", "customer_id": "nobody"}, 404, "customer_not_found"),
        ({"range": "7d", "feature_id": ["messages", "nope"]}, 404, "feature_not_found"),
        ({"range": "7d", "entity_id": "seat_1"}, 422, "not_supported"),
        ({"range": "8d"}, 422, "invalid_inputs"),
        ({}, 422, "invalid_inputs"),
        ({"range": "7d", "custom_range": {"start": 0, "end": DAY}}, 422, "invalid_inputs"),
        ({"custom_range": {"start": DAY, "end": 0}}, 422, "invalid_inputs"),
        ({"custom_range": {"start": 0, "end": 1000 * DAY}, "bin_size": "hour"}, 422, "invalid_inputs"),
        ({"range": "7d", "bin_size": None}, 422, "invalid_inputs"),
        ({"range": "7d", "group_by": "model"}, 422, "invalid_inputs"),
        ({"range": "7d", "group_by": "$plan_id"}, 422, "invalid_inputs"),
        ({"range": "7d", "timezone": "Mars/Olympus"}, 422, "invalid_inputs"),
        ({"range": "7d", "aggregate_on": "deducted"}, 422, "not_supported"),
        ({"range": "7d", "max_groups": 0}, 422, "invalid_inputs"),
    ],
)
def test_aggregate_refusals(api, customer, body, status, code):
    before = (AuditEntry.objects.count(), Event.objects.count())
    response = api.post("events.aggregate", {"customer_id": "acme_corp", "feature_id": "messages", **body})
    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert (AuditEntry.objects.count(), Event.objects.count()) == before


def test_cycle_ranges_need_a_customer(api, customer):
    response = api.post("events.aggregate", {"feature_id": "messages", "range": "1bc"})
    assert response.status_code == 422
    assert "customer_id" in response.json()["message"]


def test_another_environments_customer_is_not_found(live_api, customer):
    response = live_api.post("events.aggregate", {"customer_id": "acme_corp", "feature_id": "messages", "range": "7d"})
    assert response.json() == {"message": "Customer acme_corp not found", "code": "customer_not_found", "env": "live"}


def test_aggregate_reads_a_fixed_number_of_queries_however_many_days_and_features(api, customer, catalogue):
    def queries(**body) -> int:
        with CaptureQueriesContext(connection) as ctx:
            aggregate(api, **body)
        return len(ctx.captured_queries)

    queries(range="7d")  # the key's first use of the minute notes it: once
    few = queries(range="7d")
    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    for day in range(0, 90, 3):
        track(api, 1, at=midnight(day))
        track(api, 1, at=midnight(day), feature_id="api_calls", properties={"region": "eu"})
    assert queries(range="90d", feature_id=["messages", "api_calls", "seats"]) == few
    assert queries(range="90d", feature_id=["messages", "api_calls"], group_by="properties.region") == few - 1
