"""The customers list's ops filters: a feature's balance, plan status, dates, coupons, Stripe; sorting by a
feature's balance; the capped count; bad values refused with a message; saved views."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from autumn_admin.dashboard.customer_list import FEATURE_SORTS, ListFilters, customer_search, feature_sorted_rows
from billing.models import Balance, BulkJob, CustomerProduct
from billing.services.balances import balance_create
from billing.services.plans import END_OF_CYCLE, GRANT_FREE, NOW, plan_attach, plan_cancel
from billing.services.rewards import reward_apply
from customers.models import Customer, SavedView
from customers.services.customers import customer_create
from tests.html import element, page_of, text

LIST = "/customers/"
EXPORT = "/exports/customers.csv"


def ids(response) -> list[str]:
    return re.findall(r'<td class="mono">([^<]+)</td>', page_of(response))


@pytest.fixture
def crowd(catalogue, discount_rewards):
    """Six sandbox customers on Scale (API calls 100,000 a month), each in another state."""
    now = timezone.now()
    made = {}
    for i, cid in enumerate(["low", "pct", "over", "unl", "full", "cancelling"]):
        c = customer_create(env="sandbox", customer_id=cid, actor=None, name=cid.title())
        plan_attach(customer=c, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="x")
        Customer.objects.filter(pk=c.pk).update(created_at=now - timedelta(days=10 * (i + 1)))
        made[cid] = c
    calls = {c: Balance.objects.get(customer=made[c], feature=catalogue["api_calls"]) for c in made}
    Balance.objects.filter(pk=calls["low"].pk).update(remaining=5)  # below 10, and below 10 %
    Balance.objects.filter(pk=calls["pct"].pk).update(remaining=9000)  # below 10 % only
    Balance.objects.filter(pk=calls["over"].pk).update(remaining=-50)  # in overage
    Balance.objects.filter(pk=calls["unl"].pk).update(unlimited=True)
    Balance.objects.filter(pk=calls["cancelling"].pk).update(remaining=50000)
    scale_cp = CustomerProduct.objects.get(customer=made["cancelling"], product=catalogue["scale"], status="active")
    plan_cancel(customer=made["cancelling"], customer_product=scale_cp, actor=None, when=END_OF_CYCLE)
    reward_apply(customer=made["low"], reward=discount_rewards["twenty"], actor=None)
    Customer.objects.filter(pk=made["over"].pk).update(stripe_id="cus_over")
    # Never listed: the other environment with the same state.
    live = customer_create(env="live", customer_id="low_live", actor=None)
    plan_attach(customer=live, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="x")
    Balance.objects.filter(customer=live, feature=catalogue["api_calls"]).update(remaining=1)
    return made


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"feature": "api_calls", "balance": "below", "value": "10"}, ["low", "over"]),
        ({"feature": "api_calls", "balance": "below_pct", "value": "10"}, ["low", "pct", "over"]),
        ({"feature": "api_calls", "balance": "overage"}, ["over"]),
        ({"feature": "api_calls", "balance": "unlimited"}, ["unl"]),
        ({"status": "cancelling"}, ["cancelling"]),
        ({"coupon": "yes"}, ["low"]),
        ({"coupon": "no"}, ["pct", "over", "unl", "full", "cancelling"]),
        ({"stripe": "yes"}, ["over"]),
        ({"stripe": "no", "feature": "api_calls", "balance": "below_pct", "value": "10"}, ["low", "pct"]),
        ({"created_before": "__25__"}, ["over", "unl", "full", "cancelling"]),
        ({"created_after": "__25__"}, ["low", "pct"]),
        ({"created_after": "__45__", "created_before": "__15__"}, ["pct", "over", "unl"]),
    ],
)
def test_filters_combine_and_keep_to_the_environment(client, ops, crowd, params, expected):
    today = timezone.localdate()
    params = {
        k: (str(today - timedelta(days=int(v.strip("_")))) if v.startswith("__") else v) for k, v in params.items()
    }
    client.force_login(ops)
    response = client.get(LIST, params)
    assert response.status_code == 200
    assert ids(response) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("remaining", ["over", "low", "pct", "cancelling", "full", "unl"]),
        ("-remaining", ["full", "cancelling", "pct", "low", "over", "unl"]),
        ("usage", ["full", "cancelling", "pct", "low", "over", "unl"]),
        ("-usage", ["over", "low", "pct", "cancelling", "full", "unl"]),
    ],
)
def test_sort_by_a_features_remaining_or_usage_both_ways(client, ops, crowd, sort, expected):
    client.force_login(ops)
    response = client.get(LIST, {"feature": "api_calls", "sort": sort})
    assert ids(response) == expected  # unlimited (no figure to sort by) last either way
    assert "API calls" in text(element(page_of(response), "main"))


def test_a_feature_sort_orders_by_and_shows_the_plans_balance_not_grants(client, ops, crowd, catalogue):
    # A large grant beside the plan's 5 remaining: still sorted (and shown) by the plan's 5.
    balance_create(customer=crowd["low"], feature=catalogue["api_calls"], actor=None, reason="x", granted=10**6)
    client.force_login(ops)
    response = client.get(LIST, {"feature": "api_calls", "sort": "-remaining"})
    assert ids(response) == ["full", "cancelling", "pct", "low", "over", "unl"]
    page = text(element(page_of(response), "main"))
    assert "API calls remaining (plan)" in page and "grants aside" in page_of(response)
    low_row = next(r for r in page_of(response).split("<tr>") if ">low<" in r)
    assert ">5<" in low_row and "1,000,005" not in low_row


def test_the_feature_sorted_page_reads_the_same_rows_as_the_full_query_at_every_offset(crowd, catalogue):
    # The page walks the plan balances' index and then the customers without a figure; the export and bulk
    # jobs use the one query. Both give the same rows, whichever the offset and the page size, including a
    # customer whose plans give the feature twice (Pro and the seats add-on) and one without it at all.
    twice = customer_create(env="sandbox", customer_id="twice", actor=None)
    plan_attach(customer=twice, product=catalogue["pro"], actor=None, method=GRANT_FREE, reason="x")
    plan_attach(customer=twice, product=catalogue["seats_addon"], actor=None, method=GRANT_FREE, reason="x")
    seats = Balance.objects.filter(customer=twice, feature=catalogue["seats"]).order_by("id")
    assert seats.count() == 2
    Balance.objects.filter(pk=seats[0].pk).update(remaining=3)
    plan_attach(customer=crowd["full"], product=catalogue["pro"], actor=None, method=GRANT_FREE, reason="x")
    for feature, sort in [(f, s) for f in ("api_calls", "seats") for s in FEATURE_SORTS]:
        filters = ListFilters.from_query(QueryDict(f"feature={feature}&sort={sort}"))
        everyone = [(c.customer_id, c.feature_sort) for c in customer_search("sandbox", filters)]
        assert len({cid for cid, _ in everyone}) == len(everyone) == Customer.objects.filter(env="sandbox").count()
        rows = feature_sorted_rows("sandbox", filters)
        for limit in (1, 2, 3, 7):
            for offset in range(len(everyone) + 2):
                got = [(c.customer_id, c.feature_sort) for c in rows(offset, limit)]
                assert got == everyone[offset : offset + limit], (feature, sort, limit, offset)


def test_no_product_follows_each_change_of_a_customers_products(client, ops, catalogue):
    solo = customer_create(env="sandbox", customer_id="solo", actor=None, attach_defaults=False)
    on_free = customer_create(env="sandbox", customer_id="on_free", actor=None)  # the default plan
    client.force_login(ops)

    def no_product() -> list[str]:
        return ids(client.get(LIST, {"status": "none"}))

    assert no_product() == ["solo"]
    addon = plan_attach(customer=solo, product=catalogue["seats_addon"], actor=None, method=GRANT_FREE, reason="x")
    assert Customer.objects.get(pk=solo.pk).has_live_product
    assert no_product() == []
    plan_cancel(customer=solo, customer_product=addon.customer_product, actor=None, when=NOW)
    assert not Customer.objects.get(pk=solo.pk).has_live_product
    assert no_product() == ["solo"]
    # The flag only narrows the search: a customer with a live product is never listed, whatever it says.
    Customer.objects.filter(pk=on_free.pk).update(has_live_product=False)
    assert no_product() == ["solo"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"feature": "api_calls", "balance": "below", "value": "ten"}, "Remaining below needs a number, not 'ten'."),
        ({"feature": "api_calls", "balance": "below_pct", "value": "150"}, "between 0 and 100"),
        ({"balance": "overage"}, "Choose the feature whose balance to filter by."),
        ({"feature": "nope", "balance": "overage"}, "There is no feature 'nope'."),
        ({"feature": "sso", "balance": "overage"}, "SSO is a boolean feature"),
        ({"created_after": "31/12/2026"}, "Created after must be a date like 2026-12-31"),
        ({"coupon": "maybe"}, "Coupon must be yes or no."),
        ({"status": "made_up"}, "Unknown plan status 'made_up'"),
        ({"sort": "remaining"}, "Choose the feature to sort by."),
        ({"sort": "sideways"}, "Unknown sort 'sideways'."),
    ],
)
def test_bad_filter_values_say_what_is_wrong(client, ops, crowd, params, message):
    client.force_login(ops)
    response = client.get(LIST, params)
    assert response.status_code == 400
    assert message in text(element(page_of(response), "filter-errors"))
    assert ids(response) == []
    export = client.get("/exports/customers.csv", params)
    assert export.status_code == 400 and message in export.content.decode()


def test_the_csv_export_follows_the_filters(client, ops, crowd):
    client.force_login(ops)
    response = client.get("/exports/customers.csv", {"feature": "api_calls", "balance": "below", "value": "10"})
    body = b"".join(response.streaming_content).decode()
    assert sorted(line.split(",")[0] for line in body.splitlines()[1:]) == ["low", "over"]


def test_the_count_is_capped_and_says_so(client, ops, catalogue, monkeypatch):
    from autumn_admin.dashboard import customer_list

    monkeypatch.setattr(customer_list, "COUNT_CAP", 3)
    for i in range(5):
        customer_create(env="sandbox", customer_id=f"c{i}", actor=None)
    client.force_login(ops)
    page = page_of(client.get(LIST))
    assert text(element(page, "result-count")).startswith("More than 3 customers (count capped)")
    assert "Showing 1–5 of more than 3" in text(page)


def test_saved_views_are_chips_and_the_one_the_list_shows_is_marked(client, ops, crowd):
    client.force_login(ops)
    client.post("/saved-views/", {"name": "Coupons", "query": "coupon=yes&sort=name"})
    client.post("/saved-views/", {"name": "No coupon", "query": "coupon=no"})
    # The same filters in another order (and an empty one) are the same view.
    page = page_of(client.get(LIST + "?sort=name&q=&coupon=yes"))
    chips = page[page.index('<nav class="saved-views"') : page.index("</nav>", page.index('<nav class="saved-views"'))]
    assert chips.count('aria-current="page"') == 1
    assert re.search(r'class="chip active"><a href="/customers/\?coupon=yes&amp;sort=name" aria-current="page"', page)
    assert 'class="chip"><a href="/customers/?coupon=no"' in page
    assert "chip active" not in page_of(client.get(LIST))


def test_saved_views_are_personal_unless_ops_share_them(client, ops, support, crowd):
    client.force_login(ops)
    query = "feature=api_calls&balance=below_pct&value=10"
    response = client.post("/saved-views/", {"name": "Low on API calls", "query": query, "shared": "1"})
    assert response.status_code == 302 and response.url == f"/customers/?{query}"
    client.post("/saved-views/", {"name": "Mine only", "query": "coupon=yes"})
    page = page_of(client.get(LIST))
    assert "Low on API calls shared × Mine only ×" in text(page)

    client.force_login(support)
    page = page_of(client.get(LIST))
    assert "Low on API calls olivia_ops" in text(page) and "Mine only" not in text(page)
    assert f'href="/customers/?{query.replace("&", "&amp;")}"' in page
    # Support may save their own views, but not share them; and never delete another's.
    assert client.post("/saved-views/", {"name": "x", "query": "", "shared": "1"}).status_code == 403
    assert client.post("/saved-views/", {"name": "Support's", "query": "coupon=no"}).status_code == 302
    shared = SavedView.objects.get(name="Low on API calls")
    assert client.post(f"/saved-views/{shared.pk}/delete/").status_code == 404
    assert SavedView.objects.filter(pk=shared.pk).exists()
    # Sandbox views stay in sandbox.
    client.post("/env/", {"env": "live", "next": "/customers/"})
    assert "Low on API calls" not in text(page_of(client.get(LIST)))


def test_a_feature_sorted_page_reads_two_queries_more_than_newest_first_when_it_shows_both_kinds(client, ops, crowd):
    # The rows with a figure from the plan balances' index and their products, then (the page not being full)
    # the customers without one and theirs; no figure is computed for customers the page doesn't show.
    client.force_login(ops)
    with CaptureQueriesContext(connection) as newest:
        client.get(LIST, {"feature": "api_calls"})
    with CaptureQueriesContext(connection) as sorted_:
        response = client.get(LIST, {"feature": "api_calls", "sort": "remaining"})
    assert ids(response) == ["over", "low", "pct", "cancelling", "full", "unl"]
    assert len(sorted_.captured_queries) == len(newest.captured_queries) + 2
    rows = [
        q["sql"]
        for q in sorted_.captured_queries
        if q["sql"].startswith('SELECT "customers_customer"."id"') and "ORDER BY" in q["sql"]
    ]
    assert len(rows) == 2 and not any("SUM(" in sql.upper() for sql in rows)


@pytest.mark.parametrize("cap", [2_000, 0], ids=["narrowed first", "too many to narrow"])
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "past_due", "coupon": "yes"}, ["low"]),
        ({"status": "past_due"}, ["low", "over"]),
        ({"status": "trialing"}, ["full"]),
        ({"status": "cancelling", "coupon": "yes"}, []),
        ({"feature": "api_calls", "balance": "overage", "status": "past_due"}, ["over"]),
        ({"feature": "api_calls", "balance": "overage", "coupon": "yes"}, []),
        ({"feature": "api_calls", "balance": "unlimited", "coupon": "no"}, ["unl"]),
        ({"status": "past_due", "coupon": "yes", "stripe": "no", "q": "lo"}, ["low"]),
    ],
)
def test_filters_few_customers_match_list_the_same_rows_whether_read_through_their_ids_or_not(
    client, ops, crowd, catalogue, discount_rewards, monkeypatch, params, expected, cap
):
    # The list reads the ids the few-match filters pick (past due, a coupon, overage…) before their customers
    # when there are at most NARROW_CAP of them; past the cap it reads the customers directly. Same rows either
    # way; never the other environment's past-due customer with a coupon, nor a deleted one.
    from autumn_admin.dashboard import customer_list

    monkeypatch.setattr(customer_list, "NARROW_CAP", cap)
    for cid in ("low", "over"):
        CustomerProduct.objects.filter(customer=crowd[cid]).update(status="past_due")
    CustomerProduct.objects.filter(customer=crowd["full"]).update(status="trialing")
    live = Customer.objects.get(customer_id="low_live")
    CustomerProduct.objects.filter(customer=live).update(status="past_due")
    reward_apply(customer=live, reward=discount_rewards["twenty"], actor=None)
    gone = customer_create(env="sandbox", customer_id="gone", actor=None)
    plan_attach(customer=gone, product=catalogue["scale"], actor=None, method=GRANT_FREE, reason="x")
    CustomerProduct.objects.filter(customer=gone).update(status="past_due")
    reward_apply(customer=gone, reward=discount_rewards["twenty"], actor=None)
    Customer.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    client.force_login(ops)
    with CaptureQueriesContext(connection) as page_queries:
        response = client.get(LIST, params)
    assert response.status_code == 200
    assert ids(response) == expected
    assert [c.customer_id for c in customer_search("sandbox", ListFilters.from_query(params))] == expected
    count = text(element(page_of(response), "result-count"))
    assert count.startswith(f"{len(expected)} customer") or (not expected and "No customers" in count), count
    # Read through the ids when there are few enough of them (none at all: no customer is read), else directly.
    rows = [q["sql"] for q in page_queries.captured_queries if q["sql"].startswith('SELECT "customers_customer"."id"')]
    read_directly = any('"customers_customer"."id" IN (' not in sql for sql in rows)
    assert read_directly == (cap == 0 and bool(expected))


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_balance_filter_shows_the_balance_it_matched_on_the_list_and_in_the_export(client, ops, crowd, catalogue):
    # A large grant beside low's plan (5 remaining): the row shows the balance that matched, the plan's 5.
    balance_create(customer=crowd["low"], feature=catalogue["api_calls"], actor=None, reason="x", granted=10**6)
    client.force_login(ops)
    params = {"feature": "api_calls", "balance": "below_pct", "value": "10"}
    page = page_of(client.get(LIST, params))
    assert ids(client.get(LIST, params)) == ["low", "pct", "over"]
    assert text(element(page, "matched-balance-head")) == "API calls remaining / granted"
    cells = re.findall(r'<td class="mono">([^<]+)</td>.*?(<td class="num matched-balance">.*?</td>)', page, flags=re.S)
    shown = {cid: text(cell) for cid, cell in cells}
    assert shown == {
        "low": "5 / 100,000 (0 %)",
        "pct": "9,000 / 100,000 (9 %)",
        "over": "−50 / 100,000 (−0.1 %)",
    }
    unlimited = page_of(client.get(LIST, {"feature": "api_calls", "balance": "unlimited"}))
    assert "Unlimited" in text(element(unlimited, "main"))
    # No balance filter, no column.
    assert 'id="matched-balance-head"' not in page_of(client.get(LIST, {"feature": "api_calls"}))
    rows = _csv(client.get(EXPORT, params))
    assert rows[0][-3:] == ["api_calls_remaining", "api_calls_granted", "api_calls_remaining_pct"]
    assert {r[0]: r[-3:] for r in rows[1:]} == {
        "low": ["5", "100000", "0"],
        "pct": ["9000", "100000", "9"],
        "over": ["-50", "100000", "-0.1"],  # a number: a negative balance stays one
    }
    assert _csv(client.get(EXPORT, {"feature": "api_calls", "balance": "unlimited"}))[1][-3:] == ["unlimited", "", ""]
    assert len(_csv(client.get(EXPORT, {"feature": "api_calls"}))[0]) == len(rows[0]) - 3


def test_the_matched_balance_column_costs_no_query_more(client, ops, crowd):
    client.force_login(ops)
    with CaptureQueriesContext(connection) as plain:
        client.get(LIST, {"feature": "api_calls", "stripe": "no"})
    with CaptureQueriesContext(connection) as filtered:
        response = client.get(LIST, {"feature": "api_calls", "balance": "below", "value": "10"})
    assert 'id="matched-balance-head"' in page_of(response)
    assert len(filtered.captured_queries) == len(plain.captured_queries)


RANGE = "Created after must be a date between 1900-01-01 and 9999-12-30, not 9999-12-31."
EXTREME = [
    ({"created_after": "9999-12-31"}, "created_after", RANGE),
    ({"created_before": "9999-12-31"}, "created_before", "Created before must be a date between 1900-01-01"),
    ({"created_after": "0001-01-01"}, "created_after", "Created after must be a date between 1900-01-01"),
    ({"created_before": "0001-01-01"}, "created_before", "Created before must be a date between 1900-01-01"),
    ({"created_after": "10000-01-01"}, "created_after", "Created after must be a date like 2026-12-31"),
    *(
        ({"feature": "api_calls", "balance": balance, "value": value}, "value", message)
        for balance in ("below", "below_pct")
        for value, message in (
            ("1e-999999", "needs a number with at most 6 decimal places, not '1e-999999'"),
            ("0.0000001", "needs a number with at most 6 decimal places"),
            ("1e999999", "needs a number between −1,000,000,000,000 and 1,000,000,000,000"),
            ("99999999999999999999", "needs a number between"),
            ("-1e13", "needs a number between"),
            ("NaN", "needs a number, not 'NaN'"),
            ("sNaN", "needs a number, not 'sNaN'"),
            ("Infinity", "needs a number, not 'Infinity'"),
            ("-Infinity", "needs a number, not '-Infinity'"),
        )
    ),
]


@pytest.mark.parametrize(("params", "name", "message"), EXTREME)
def test_extreme_filter_values_get_a_message_on_the_list_the_export_and_the_bulk_action_never_a_500(
    client, ops, crowd, discount_rewards, params, name, message
):
    client.force_login(ops)
    response = client.get(LIST, params)
    assert response.status_code == 400
    page = page_of(response)
    assert message in text(element(page, "filter-errors"))
    # The value stays in its input, marked.
    field_id = {"created_after": "f-after", "created_before": "f-before", "value": "f-value"}[name]
    field = element(page, field_id)
    assert 'aria-invalid="true"' in field and f'value="{params[name]}"' in field
    assert ids(response) == []
    export = client.get(EXPORT, params)
    assert export.status_code == 400 and message in export.content.decode()
    bulk = {**params, "scope": "all", "action": "add_coupon", "act_reward": "twenty_off", "reason": "x"}
    for answer in (client.get("/bulk/", bulk), client.post("/bulk/", {**bulk, "preview": "1"})):
        assert answer.status_code == 400 and message in text(element(page_of(answer), "bulk-error"))
    answer = client.post("/bulk/", {**bulk, "run": "1"})
    assert answer.status_code == 400 and message in text(element(page_of(answer), "bulk-error"))
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("created_after=9999-12-31", "Created after must be a date between"),
        ("feature=api_calls&balance=below&value=1e-999999", "at most 6 decimal places"),
        ("status=made_up", "Unknown plan status 'made_up'"),
        ("feature=nope&balance=overage", "There is no feature 'nope'."),
        ("product=scale&status=none", "“No product” can't be combined with a product"),
        ("sort=remaining", "Choose the feature to sort by."),
    ],
)
def test_a_saved_view_of_filters_the_list_refuses_is_refused_and_nothing_is_stored(client, ops, crowd, query, message):
    client.force_login(ops)
    response = client.post("/saved-views/", {"name": "Bad", "query": query}, follow=True)
    said = text(re.search(r'<p class="message error">(.*?)</p>', page_of(response), flags=re.S).group(1))
    assert said.startswith("These filters can't be saved: ") and message in said
    assert not SavedView.objects.exists()


def test_a_saved_view_stores_the_filters_as_the_list_reads_them(client, ops, crowd):
    client.force_login(ops)
    response = client.post("/saved-views/", {"name": "Coupons", "query": "page=3&junk=1&coupon=yes&sort=name"})
    assert response.status_code == 302
    view = SavedView.objects.get()
    assert view.query == "coupon=yes&sort=name"
    assert ids(client.get(f"{LIST}?{view.query}")) == ["low"]


@pytest.mark.parametrize("shared", ["1", "0", "true", "yes"])
def test_support_cannot_share_a_view_whatever_the_shared_value_says(client, support, crowd, shared):
    client.force_login(support)
    assert client.post("/saved-views/", {"name": "x", "query": "coupon=yes", "shared": shared}).status_code == 403
    assert not SavedView.objects.exists()


def test_a_shared_value_other_than_1_is_refused_not_read_as_sharing(client, ops, crowd):
    client.force_login(ops)
    response = client.post("/saved-views/", {"name": "x", "query": "coupon=yes", "shared": "0"}, follow=True)
    assert "“Share with the team” is ticked (1) or left out, not '0'." in text(page_of(response))
    assert not SavedView.objects.exists()
