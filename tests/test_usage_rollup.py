"""The usage graphs read a daily rollup that every track keeps, not the customer's events."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from billing import rollup
from billing.models import DailyUsage, Event, UsageRollup
from billing.services.products import product_attach
from billing.services.track import balance_track
from customers.formatting import format_day
from customers.models import AuditEntry
from tests.html import element, page_of

URL = "/customers/acme_corp/"


def _days(customer, feature) -> dict:
    return {row.day: row.value for row in DailyUsage.objects.filter(customer=customer, feature=feature)}


def _graph_titles(client) -> list[str]:
    import re

    row = element(page_of(client.get(URL)), "balance-row-messages")
    return re.findall(r'<g class="day"><title>(.*?)</title>', row)


@pytest.fixture
def on_pro(customer, catalogue, ops):
    product_attach(customer=customer, product=catalogue["pro"], actor=ops, now=timezone.now() - timedelta(days=3))
    return customer


def test_every_track_adds_its_value_to_the_day_it_happened(on_pro, catalogue):
    messages = catalogue["messages"]
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    balance_track(customer=on_pro, feature=messages, value=5, actor=None, timestamp=yesterday)
    balance_track(customer=on_pro, feature=messages, value="2.5", actor=None)
    balance_track(customer=on_pro, feature=messages, value=1, actor=None)
    # With an idempotency key the track takes the general path; a replay adds nothing.
    balance_track(customer=on_pro, feature=messages, value=10, actor=None, idempotency_key="k1")
    balance_track(customer=on_pro, feature=messages, value=10, actor=None, idempotency_key="k1")

    assert _days(on_pro, messages) == {
        timezone.localdate(yesterday): Decimal(5),
        timezone.localdate(now): Decimal("13.5"),
    }
    assert Event.objects.filter(customer=on_pro).aggregate(s=Sum("value"))["s"] == Decimal("18.5")


def test_fractions_add_up_exactly_on_the_graph(client, ops, on_pro, catalogue):
    balance_track(customer=on_pro, feature=catalogue["messages"], value="0.1", actor=None)
    balance_track(customer=on_pro, feature=catalogue["messages"], value="0.2", actor=None)
    client.force_login(ops)
    assert _graph_titles(client)[-1] == f"{format_day(timezone.localdate())}: 0.3 used"


def test_a_refund_and_a_capped_track_count_what_the_event_records(on_pro, catalogue):
    # The graph shows usage as recorded by events, in full, even where the balance stopped at zero.
    messages = catalogue["messages"]
    balance_track(customer=on_pro, feature=messages, value=6000, actor=None)
    balance_track(customer=on_pro, feature=messages, value=-100, actor=None)
    assert _days(on_pro, messages) == {timezone.localdate(): Decimal(5900)}


def test_the_page_graph_reads_the_rollup_and_never_sums_the_events(client, ops, on_pro, catalogue):
    balance_track(customer=on_pro, feature=catalogue["messages"], value=40, actor=None)
    client.force_login(ops)
    with CaptureQueriesContext(connection) as ctx:
        titles = _graph_titles(client)
    assert titles[-1] == f"{format_day(timezone.localdate())}: 40 used"
    sql = [q["sql"] for q in ctx.captured_queries]
    assert any("billing_dailyusage" in q for q in sql)
    assert not any("billing_event" in q and "SUM(" in q.upper() for q in sql)


def test_after_time_zone_changes_graphs_sum_the_events_until_the_rollup_is_rebuilt(client, ops, on_pro, catalogue):
    # 23:30 UTC yesterday is already today in Tokyo: the day a bar falls on depends on the zone.
    now = timezone.now()
    late = datetime.combine(now.astimezone(UTC).date() - timedelta(days=1), datetime.min.time(), UTC) + timedelta(
        hours=23, minutes=30
    )
    balance_track(customer=on_pro, feature=catalogue["messages"], value=7, actor=None, timestamp=late)
    client.force_login(ops)
    with override_settings(TIME_ZONE="Asia/Tokyo"):
        tokyo_day = late.astimezone(timezone.get_default_timezone()).date()
        with CaptureQueriesContext(connection) as ctx:
            titles = _graph_titles(client)
        assert f"{format_day(tokyo_day)}: 7 used" in titles
        assert any("billing_event" in q["sql"] and "SUM(" in q["sql"].upper() for q in ctx.captured_queries)

        out = io.StringIO()
        call_command("rebuild_usage_rollup", stdout=out)
        assert out.getvalue().strip() == "Daily usage rebuilt in Asia/Tokyo (was UTC): 1 rows."
        assert _days(on_pro, catalogue["messages"]) == {tokyo_day: Decimal(7)}
        with CaptureQueriesContext(connection) as ctx:
            titles = _graph_titles(client)
        assert f"{format_day(tokyo_day)}: 7 used" in titles
        assert not any("billing_event" in q["sql"] and "SUM(" in q["sql"].upper() for q in ctx.captured_queries)
        # Tracks now count Tokyo days.
        balance_track(customer=on_pro, feature=catalogue["messages"], value=1, actor=None, timestamp=late)
        assert _days(on_pro, catalogue["messages"]) == {tokyo_day: Decimal(8)}
    assert UsageRollup.objects.get().time_zone == "Asia/Tokyo"
    entry = AuditEntry.objects.get(action="usage.rebuild")
    assert entry.actor_label == "system" and entry.after == {"time_zone": "Asia/Tokyo", "rows": 1}


def test_rebuild_matches_what_the_tracks_wrote(on_pro, catalogue):
    for days_ago, value in [(0, 3), (0, 4), (2, 9), (40, 1)]:
        at = timezone.now() - timedelta(days=days_ago)
        balance_track(customer=on_pro, feature=catalogue["messages"], value=value, actor=None, timestamp=at)
    kept = _days(on_pro, catalogue["messages"])
    assert rollup.rebuild() == 3
    assert _days(on_pro, catalogue["messages"]) == kept


def test_deleting_a_customer_for_good_removes_its_daily_usage(on_pro, catalogue):
    balance_track(customer=on_pro, feature=catalogue["messages"], value=3, actor=None)
    on_pro.delete()
    assert not DailyUsage.objects.exists()
