"""The customer details page: what each section shows, its empty states, 404s, roles, and speed."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Balance, CreditCost, CustomerProduct, Feature, Invoice, Reward
from billing.services.balances import balance_set
from billing.services.products import product_attach
from billing.services.referrals import referral_code_create, referral_code_redeem, referral_program_create
from billing.services.rewards import reward_apply
from billing.services.track import balance_track
from billing.stripe_inbound.sync import apply_invoice
from customers.formatting import format_day
from customers.models import AuditEntry
from customers.services.customers import customer_create, customer_delete
from tests.html import element, page_of, text

URL = "/customers/acme_corp/"


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def acme(customer, catalogue, ops):
    """Acme Corp on Pro (10 days in) with the Extra seats add-on, usage on three days, a manual
    edit, a 20 % coupon, and three invoices."""
    now = timezone.now()
    product_attach(customer=customer, product=catalogue["pro"], actor=ops, now=now - timedelta(days=10))
    product_attach(customer=customer, product=catalogue["seats_addon"], actor=ops, now=now - timedelta(days=5))
    messages = catalogue["messages"]
    for days_ago, value in [(2, 120), (2, 80), (1, 300), (0, 40)]:
        at = now - timedelta(days=days_ago)
        balance_track(
            customer=customer,
            feature=messages,
            value=value,
            actor=None,
            timestamp=at,
            now=at,
            event_name="message_sent",
            properties={"model": "fast"},
        )
    for _ in range(3):
        balance_track(customer=customer, feature=catalogue["seats"], value=1, actor=None, now=now)
    balance = Balance.objects.get(customer=customer, feature=messages)
    balance_set(balance=balance, new_balance=1240, actor=ops, reason="outage", now=now)
    reward = Reward.objects.create(
        reward_id="launch20",
        name="Launch 20%",
        type="percentage_discount",
        value=20,
        duration="months",
        duration_months=3,
    )
    reward_apply(customer=customer, reward=reward, actor=ops, now=now - timedelta(days=1))
    Invoice.objects.create(
        customer=customer,
        stripe_id="in_1",
        status="paid",
        total=9900,
        amount_paid=9900,
        product_ids=["pro"],
        hosted_invoice_url="https://invoice.stripe.test/i/1",
        invoice_pdf="https://invoice.stripe.test/i/1/pdf",
        created_at=now - timedelta(days=40),
    )
    Invoice.objects.create(
        customer=customer,
        stripe_id="in_2",
        status="open",
        total=11900,
        product_ids=["pro", "seats_addon"],
        hosted_invoice_url="https://invoice.stripe.test/i/2",
        created_at=now - timedelta(days=9),
    )
    Invoice.objects.create(
        customer=customer,
        stripe_id="in_3",
        status="void",
        total=5000,
        currency="eur",
        product_ids=["legacy_plan"],
        created_at=now - timedelta(days=70),
    )
    customer.stripe_id = "cus_P9x"
    customer.fingerprint = "fp_7d2a"
    customer.metadata = {"plan_tier": "growth", "seats": 12}
    customer.save()
    return customer


# --- each section ---------------------------------------------------------------------------


def test_header_names_the_customer_with_state_and_plans(client, ops, acme):
    page = page_of(login(client, ops).get(URL))
    head = text(element(page, "main"))
    assert "Customers › Acme Corp" in head
    assert f"acme_corp · ada@acme.test · created {format_day(acme.created_at)}" in head
    assert re.search(
        r'<span class="badge active">Active</span>\s*<span class="chip">Pro</span>\s*'
        r'<span class="chip">Extra seats</span>',
        page,
    )


def test_products_show_status_dates_and_the_limits_each_includes(client, ops, acme):
    section = element(page_of(login(client, ops).get(URL)), "section-products")
    pro = CustomerProduct.objects.get(customer=acme, product__product_id="pro")
    rows = [text(r) for r in re.findall(r'<tbody class="product-row">.*?</tbody>', section, flags=re.S)]
    assert rows[0] == (
        f"Pro pro Active {format_day(pro.started_at)} {format_day(pro.current_period_end)} — ⋯ Cancel "
        "Includes: Messages 5,000 / month Seats 10 SSO Customize"
    )
    assert rows[1].startswith("Extra seats add-on seats_addon Active")
    assert rows[1].endswith("Seats 10 Customize")
    # The free plan Pro replaced is kept out of the way, with when it ended.
    assert "Show expired (1)" in text(section)
    assert re.search(r"Free free Expired .* ended", rows[2])
    assert f'title="{pro.started_at.day} {pro.started_at:%b %Y, %H:%M:%S} UTC"' in section


def test_features_show_balance_usage_source_and_next_reset(client, ops, acme):
    page = page_of(login(client, ops).get(URL))
    messages = element(page, "balance-row-messages")
    balance = Balance.objects.get(customer=acme, feature__feature_id="messages")
    # 5,000 included, 540 used, then set to 1,240 by ops: granted moved to 1,780.
    assert text(messages).startswith(f"Messages messages 1,240 / 1,780 540 Pro {format_day(balance.next_reset_at)}")
    assert 'style="width: 30%"' in messages  # 540 / 1,780
    seats = text(element(page, "balance-row-seats"))
    assert seats.startswith("Seats seats 17 / 20 3 Pro 7 / 10 Extra seats 10 / 10 ✎ Never")
    sso = text(element(page, "balance-row-sso"))
    assert sso == "SSO sso Enabled — Pro — ⋯ Check balance"  # an on/off feature has no usage to record
    # Metered first, then boolean.
    assert page.index("balance-row-messages") < page.index("balance-row-seats") < page.index("balance-row-sso")


def test_history_graph_shows_thirty_days_of_usage_and_marks_the_manual_edit(client, ops, acme):
    row = element(page_of(login(client, ops).get(URL)), "balance-row-messages")
    days = re.findall(r'<g class="day"><title>(.*?)</title>', row)
    today = timezone.localdate()
    assert len(days) == 30
    assert days[0] == f"{format_day(today - timedelta(days=29))}: 0 used"
    assert days[-3:] == [
        f"{format_day(today - timedelta(days=2))}: 200 used",
        f"{format_day(today - timedelta(days=1))}: 300 used",
        f"{format_day(today)}: 40 used",
    ]
    bars = re.search(r'<path class="bars" d="([^"]*)"/>', row).group(1)
    assert bars.count("M") == 3  # bars only where there was usage, one path for all of them
    assert row.count('class="bars"') == 1
    edit = re.findall(r'<g class="edit"><title>(.*?)</title>', row)
    assert edit == [f"{format_day(today)}: olivia_ops set Messages 4,460 → 1,240 · “outage”"]
    assert "Last 30 days · 540 used · peak 300/day" in text(row)
    assert 'aria-label="Daily usage of Messages over the last 30 days: 540 in total' in row


def test_a_due_reset_applies_before_the_page_shows_and_is_marked_on_the_graph(client, ops, customer, catalogue):
    now = timezone.now()
    started = now - timedelta(days=35)
    product_attach(customer=customer, product=catalogue["pro"], actor=ops, now=started)
    balance_track(
        customer=customer, feature=catalogue["messages"], value=700, actor=None, timestamp=started, now=started
    )
    assert Balance.objects.get(customer=customer, feature=catalogue["messages"]).remaining == 4300

    page = page_of(login(client, ops).get(URL))

    balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    assert balance.remaining == 5000 and balance.next_reset_at > now
    assert text(element(page, "balance-row-messages")).startswith("Messages messages 5,000 / 5,000 0 Pro")
    reset_day = timezone.localdate(started) + timedelta(days=0)
    resets = re.findall(r'<g class="reset"><title>(.*?)</title>', element(page, "balance-row-messages"))
    scheduled = AuditEntry.objects.get(action="balance.reset").before["next_reset_at"]
    assert resets == [f"{format_day(timezone.datetime.fromisoformat(scheduled))}: Messages reset to 5,000"]
    assert reset_day < timezone.localdate()
    assert "system reset Messages to 5,000" in text(element(page, "section-sidebar-activity"))


def test_upcoming_invoice_itemises_fixed_prices_and_the_discount(client, ops, acme):
    section = element(page_of(login(client, ops).get(URL)), "section-upcoming-invoice")
    pro = CustomerProduct.objects.get(customer=acme, product__product_id="pro")
    assert text(section) == (
        f"Upcoming invoice · {format_day(pro.current_period_end)} "
        "Pro monthly $99.00 Extra seats monthly $20.00 Launch 20% 20% off · 3 months −$23.80 "
        "Subtotal $119.00 Total $95.20"
    )


def test_upcoming_invoice_shows_no_overage_line_before_there_is_overage(client, ops, customer, catalogue):
    product_attach(customer=customer, product=catalogue["scale"], actor=ops)
    balance_track(customer=customer, feature=catalogue["api_calls"], value=40_000, actor=None)

    section = text(element(page_of(login(client, ops).get(URL)), "section-upcoming-invoice"))

    assert "overage" not in section and "$0.00" not in section
    assert section.endswith("Scale monthly $250.00 Total $250.00")


def test_upcoming_invoice_charges_overage_per_started_block_of_billing_units(client, ops, customer, catalogue):
    product_attach(customer=customer, product=catalogue["scale"], actor=ops)
    balance_track(customer=customer, feature=catalogue["api_calls"], value=112_345, actor=None)
    fixed = Reward.objects.create(
        reward_id="sorry10", name="Sorry $10", type="fixed_discount", value=1000, duration="forever"
    )
    reward_apply(customer=customer, reward=fixed, actor=ops)
    section = text(element(page_of(login(client, ops).get(URL)), "section-upcoming-invoice"))
    assert "Scale monthly $250.00" in section
    assert "API calls overage 12,345 × $1.00 per 1,000 $13.00" in section
    assert "Sorry $10 $10.00 off · forever −$10.00" in section
    assert section.endswith("Subtotal $263.00 Total $253.00")
    row = text(element(page_of(client.get(URL)), "balance-row-api_calls"))
    assert row.startswith("API calls api_calls −12,345 / 100,000 112,345 12,345 over Scale")


def test_invoices_show_date_products_money_status_and_links(client, ops, acme):
    section = element(page_of(login(client, ops).get(URL)), "section-invoices")
    rows = [text(r) for r in re.findall(r"<tr>.*?</tr>", section, flags=re.S)][1:]
    newest, older, oldest = Invoice.objects.filter(customer=acme).order_by("-created_at")
    assert rows == [
        f"{format_day(newest.created_at)} Pro, Extra seats $119.00 Open Details of the invoice of "
        f"{newest.created_at:%-d %b %Y} View ↗ invoice of {newest.created_at:%-d %b %Y} (opens in a new tab)",
        f"{format_day(older.created_at)} Pro $99.00 Paid Details of the invoice of {older.created_at:%-d %b %Y} "
        f"View ↗ invoice of {older.created_at:%-d %b %Y} (opens in a new tab) PDF of the invoice of "
        f"{older.created_at:%-d %b %Y}",
        f"{format_day(oldest.created_at)} legacy_plan €50.00 Void Details of the invoice of "
        f"{oldest.created_at:%-d %b %Y}",
    ]
    assert '<a href="https://invoice.stripe.test/i/1" target="_blank" rel="noopener">' in section
    assert '<a href="https://invoice.stripe.test/i/1/pdf" target="_blank" rel="noopener">' in section
    assert '<span class="badge paid">Paid</span>' in section


def test_events_are_newest_first_with_value_time_and_properties(client, ops, acme):
    section = element(page_of(login(client, ops).get(URL)), "section-events")
    rows = [text(r) for r in re.findall(r"<tr>.*?</tr>", section, flags=re.S)][1:]
    assert rows[0].startswith("Seats 1 just now")
    assert rows[3] == 'Messages message_sent 40 just now {"model": "fast"}'
    assert rows[4] == 'Messages message_sent 300 1 day ago {"model": "fast"}'
    assert [r.split(" ")[2] for r in rows[5:]] == ["80", "120"]  # the same time: the later one first
    assert len(rows) == 7
    assert "Load more" not in section


def test_events_filter_by_feature(client, ops, acme):
    page = page_of(login(client, ops).get(URL + "?events_feature=seats"))
    section = element(page, "section-events")
    rows = [text(r) for r in re.findall(r"<tr>.*?</tr>", section, flags=re.S)][1:]
    assert len(rows) == 3 and all(r.startswith("Seats 1") for r in rows)
    assert '<option value="seats" selected>Seats</option>' in section
    # The htmx filter swaps the section alone.
    fragment = page_of(client.get(URL + "events/?events_feature=messages", HTTP_HX_REQUEST="true"))
    assert fragment.lstrip().startswith('<section id="section-events"')
    assert "<html" not in fragment
    assert len(re.findall(r"<tr>", fragment)) - 1 == 4


@pytest.fixture
def busy(customer, catalogue, ops):
    """60 events, one a minute, and 14 invoices."""
    now = timezone.now()
    for i in range(60):
        at = now - timedelta(minutes=i)
        balance_track(customer=customer, feature=catalogue["messages"], value=i + 1, actor=None, timestamp=at, now=now)
    for i in range(14):
        Invoice.objects.create(
            customer=customer, total=1000 + i, status="paid", created_at=now - timedelta(days=30 * i)
        )
    return customer


def _event_values(fragment: str) -> list[str]:
    return [text(v) for v in re.findall(r'<td class="num">(.*?)</td>', fragment)]


def test_load_more_events_pages_by_keyset_with_htmx_and_a_plain_link(client, ops, busy):
    page = page_of(login(client, ops).get(URL))
    section = element(page, "section-events")
    assert _event_values(section) == [str(i) for i in range(1, 26)]
    cursor = re.search(r'hx-get="/customers/acme_corp/events/\?events_before=([0-9_]+)"', section).group(1)
    assert f'href="/customers/acme_corp/?events_before={cursor}#section-events"' in section

    more = page_of(client.get(f"{URL}events/?events_before={cursor}", HTTP_HX_REQUEST="true"))
    assert "<section" not in more and "<html" not in more
    assert _event_values(more) == [str(i) for i in range(26, 51)]
    cursor2 = re.search(r"events_before=([0-9_]+)", more).group(1)
    last = page_of(client.get(f"{URL}events/?events_before={cursor2}", HTTP_HX_REQUEST="true"))
    assert _event_values(last) == [str(i) for i in range(51, 61)]
    assert "Load more" not in last

    # Without JavaScript, the link opens the page at the next events, with a way back.
    fallback = element(page_of(client.get(f"{URL}?events_before={cursor}")), "section-events")
    assert _event_values(fallback) == [str(i) for i in range(26, 51)]
    assert "Newest events" in fallback
    # The fragment URL opened directly sends the person to the page.
    direct = client.get(f"{URL}events/?events_before={cursor}")
    assert direct.status_code == 302
    assert direct["Location"] == f"{URL}?events_before={cursor}#section-events"


def test_invoices_are_paged_too(client, ops, busy):
    section = element(page_of(login(client, ops).get(URL)), "section-invoices")
    assert section.count('<span class="badge paid">') == 10
    cursor = re.search(r"invoices_before=([0-9_]+)", section).group(1)
    more = page_of(client.get(f"{URL}invoices/?invoices_before={cursor}", HTTP_HX_REQUEST="true"))
    assert [text(v) for v in re.findall(r'<td class="num">(.*?)</td>', more)] == [
        "$10.10",
        "$10.11",
        "$10.12",
        "$10.13",
    ]


def test_a_malformed_paging_cursor_is_a_400(client, ops, acme):
    login(client, ops)
    response = client.get(URL + "?events_before=yesterday")
    assert response.status_code == 400
    assert "The events paging cursor 'yesterday' is not valid." in text(page_of(response))
    fragment = client.get(URL + "invoices/?invoices_before=1_x", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 400


def test_sidebar_details_show_ids_stripe_link_and_metadata(client, ops, acme):
    section = element(page_of(login(client, ops).get(URL)), "section-sidebar-details")
    assert text(section).startswith(
        "Details ID acme_corp ✎ Name Acme Corp ✎ Email ada@acme.test ✎ Fingerprint fp_7d2a ✎ "
        "Stripe customer cus_P9x ↗ (opens the Stripe dashboard in a new tab) "
        "Metadata plan_tier = growth seats = 12 ✎"
    )
    assert 'href="https://dashboard.stripe.com/test/customers/cus_P9x" target="_blank" rel="noopener"' in section
    assert 'href="/customers/acme_corp/details/edit/?field=email"' in section


def test_stripe_link_of_a_live_customer_goes_to_the_live_dashboard(client, ops, catalogue):
    customer_create(env="live", customer_id="big_co", actor=None, name="Big Co")
    from customers.models import Customer

    Customer.objects.filter(customer_id="big_co").update(stripe_id="cus_L1")
    login(client, ops)
    client.post("/env/", {"env": "live"})
    section = element(page_of(client.get("/customers/big_co/")), "section-sidebar-details")
    assert 'href="https://dashboard.stripe.com/customers/cus_L1"' in section


def test_sidebar_rewards_and_activity(client, ops, acme):
    page = page_of(login(client, ops).get(URL))
    reward = acme.customer_rewards.get()
    rewards = text(element(page, "section-sidebar-rewards"))
    assert rewards == (
        f"Rewards Launch 20% 20% off · 3 months · until {format_day(reward.expires_at)} "
        f"applied {format_day(reward.applied_at)} by olivia_ops · Remove Add Coupon"
    )
    activity = [text(li) for li in re.findall(r"<li>.*?</li>", element(page, "section-sidebar-activity"), flags=re.S)]
    assert activity[:3] == [
        "olivia_ops applied coupon Launch 20% · just now",
        "olivia_ops set Messages 4,460 → 1,240 · outage · just now",
        "olivia_ops attached Extra seats · just now",
    ]
    assert "olivia_ops attached Pro (replacing Free) · just now" in activity
    assert "system created the customer · just now" in activity


# --- empty states, 404s, roles ----------------------------------------------------------------


def test_a_new_customer_shows_every_section_empty(client, viewer, db):
    customer_create(env="sandbox", customer_id="acme_corp", actor=None, attach_defaults=False)
    page = page_of(login(client, viewer).get(URL))
    assert "Not on any product yet." in text(element(page, "section-products"))
    assert "No features." in text(element(page, "section-features"))
    assert "Nothing to charge" in text(element(page, "section-upcoming-invoice"))
    assert "No invoices yet." in text(element(page, "section-invoices"))
    assert "No events yet." in text(element(page, "section-events"))
    assert "No coupons applied." in text(element(page, "section-sidebar-rewards"))
    assert "system created the customer" in text(element(page, "section-sidebar-activity"))
    details = text(element(page, "section-sidebar-details"))
    assert "Name — Email — Fingerprint — Stripe customer — Stripe not connected Metadata —" in details
    assert '<span class="badge none">No product</span>' in page


def test_unknown_customer_is_a_clear_404(client, ops, db):
    response = login(client, ops).get("/customers/nobody_here/")
    assert response.status_code == 404
    body = text(element(page_of(response), "main"))
    assert "Customer not found" in body
    assert "There is no customer with the ID nobody_here in sandbox." in body
    assert 'value="nobody_here"' in page_of(response)  # search again, prefilled


def test_deleted_customer_is_a_404(client, ops, customer):
    customer_delete(customer=customer, actor=ops)
    assert login(client, ops).get(URL).status_code == 404
    assert client.get(URL + "events/", HTTP_HX_REQUEST="true").status_code == 404


def test_customer_of_the_other_environment_is_a_404_until_switching(client, ops, db):
    customer_create(env="live", customer_id="acme_corp", actor=None, name="Acme Live")
    login(client, ops)
    assert client.get(URL).status_code == 404
    client.post("/env/", {"env": "live"})
    response = client.get(URL)
    assert response.status_code == 200
    assert "Acme Live" in page_of(response)


def test_every_unknown_address_gets_the_404_page(client, ops, db):
    response = login(client, ops).get("/nowhere/")
    assert response.status_code == 404
    assert "Page not found" in page_of(response)


@pytest.mark.parametrize("role", ["ops", "support", "viewer"])
def test_every_role_can_view_the_page_and_the_list(client, role, acme, request):
    login(client, request.getfixturevalue(role))
    assert client.get(URL).status_code == 200
    assert client.get("/customers/").status_code == 200
    assert client.get(URL + "events/", HTTP_HX_REQUEST="true").status_code == 200


@pytest.mark.parametrize("url", [URL, "/customers/", URL + "events/", reverse("customers:export")])
def test_an_anonymous_visitor_is_sent_to_login(client, acme, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def _controls(page: str) -> dict[str, bool]:
    balance = Balance.objects.get(feature__feature_id="messages")
    return {
        "balance": f'href="/customers/acme_corp/balances/{balance.pk}/edit/"' in page,
        "details": 'href="/customers/acme_corp/details/edit/?field=name"' in page,
        "coupon": 'href="/customers/acme_corp/rewards/add/"' in page,
        "settings": ">Delete</a>" in element(page, "settings-menu"),
    }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("ops", {"balance": True, "details": True, "coupon": True, "settings": True}),
        ("support", {"balance": True, "details": False, "coupon": False, "settings": False}),
        ("viewer", {"balance": False, "details": False, "coupon": False, "settings": False}),
    ],
)
def test_edit_controls_show_only_to_roles_that_may_use_them(client, acme, request, role, expected):
    page = page_of(login(client, request.getfixturevalue(role)).get(URL))
    assert _controls(page) == expected
    row = element(page, "balance-row-messages")
    assert f'data-balance-id="{Balance.objects.get(feature__feature_id="messages").pk}"' in row
    assert ("data-row-link" in row) is expected["balance"]


def test_unlimited_and_boolean_rows_have_no_balance_edit(client, ops, customer, catalogue):
    from billing.models import Product, ProductItem

    plan = Product.objects.create(product_id="unlimited", name="Unlimited")
    ProductItem.objects.create(product=plan, feature=catalogue["messages"], unlimited=True)
    ProductItem.objects.create(product=plan, feature=catalogue["sso"])
    product_attach(customer=customer, product=plan, actor=ops)
    page = page_of(login(client, ops).get(URL))
    for feature_id in ("messages", "sso"):
        row = element(page, f"balance-row-{feature_id}")
        assert "data-row-link" not in row and "/edit/" not in row
    assert text(element(page, "balance-row-messages")).startswith("Messages messages Unlimited 0 in 30 days")


# --- fragments for the actions -----------------------------------------------------------------


def test_each_partial_renders_alone_from_the_page_context(rf, ops, acme):
    from django.template.loader import render_to_string

    from autumn_admin.dashboard.customer_page import customer_page_context

    request = rf.get(URL)
    request.user = ops
    request.session = {}
    context = customer_page_context(acme, request=request)
    for name in (
        "products",
        "features",
        "upcoming-invoice",
        "sidebar-details",
        "sidebar-rewards",
        "sidebar-activity",
        "events",
        "invoices",
    ):
        html = render_to_string(f"customers/detail.html#{name}", context, request=request)
        assert html.lstrip().startswith(f'<section id="section-{name}"'), name
    row = render_to_string(
        "customers/detail.html#balance-row",
        {**context, "fb": context["feature_rows_by_id"]["messages"]},
        request=request,
    )
    assert row.lstrip().startswith('<tbody id="balance-row-messages"')
    assert row.count('<g class="day">') == 30


# --- speed --------------------------------------------------------------------------------------


def _queries(client, url) -> int:
    client.get(url)  # due resets, if any, are written on the first view
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.fixture
def small_and_large(credits_catalogue, ops):
    """Two customers with one of everything, and with a lot of everything (a credit pool among it)."""
    catalogue = credits_catalogue
    now = timezone.now()
    small = customer_create(env="sandbox", customer_id="small", actor=None)
    product_attach(customer=small, product=catalogue["pro"], actor=ops)
    balance_track(customer=small, feature=catalogue["messages"], value=1, actor=None)
    Invoice.objects.create(customer=small, total=9900, status="paid")
    reward = Reward.objects.create(reward_id="r0", name="R0", type="percentage_discount", value=5, duration="forever")
    reward_apply(customer=small, reward=reward, actor=ops)

    large = customer_create(env="sandbox", customer_id="large", actor=None)
    product_attach(customer=large, product=catalogue["scale"], actor=ops, now=now - timedelta(days=70))
    product_attach(customer=large, product=catalogue["seats_addon"], actor=ops)
    for feature in ("sso", "seats", "messages"):
        from billing.services.balances import balance_create

        balance_create(
            customer=large, feature=catalogue[feature], actor=ops, granted=50, interval="month", reason="Goodwill"
        )
    events = []
    from billing.models import Event

    for i in range(600):
        feature = catalogue["api_calls"] if i % 2 else catalogue["messages"]
        events.append(
            Event(customer=large, feature=feature, value=Decimal(i % 7 + 1), timestamp=now - timedelta(hours=i))
        )
    Event.objects.bulk_create(events)
    from billing import rollup

    rollup.rebuild()  # written in bulk, around the track path that keeps the graphs' rollup
    Invoice.objects.bulk_create(
        [Invoice(customer=large, total=i * 100, status="paid", created_at=now - timedelta(days=i)) for i in range(80)]
    )
    for i in range(6):
        r = Reward.objects.create(
            reward_id=f"r{i + 1}", name=f"R{i + 1}", type="fixed_discount", value=100, duration="forever"
        )
        reward_apply(customer=large, reward=r, actor=ops)
    from billing.services.balances import balance_create

    balance_create(customer=large, feature=catalogue["ai_credits"], actor=ops, granted=50, reason="Pilot")
    for _ in range(3):
        balance_track(customer=large, feature=catalogue["images"], value=2, actor=None)
    for i in range(40):
        b = Balance.objects.filter(customer=large, feature=catalogue["api_calls"]).first()
        balance_set(balance=b, new_balance=-i, actor=ops, reason=f"edit {i}")
    return small, large


@pytest.mark.parametrize("role", ["ops", "viewer"])
def test_the_page_runs_a_constant_number_of_queries(client, request, role, small_and_large, django_assert_num_queries):
    login(client, request.getfixturevalue(role))
    small = _queries(client, "/customers/small/")
    large = _queries(client, "/customers/large/")
    assert small == large
    # The session, the user with the role (one query: autumn_admin/dashboard/auth_backend.py), and the page's 13
    # (the credit schema lines, the customer's entities, its referral codes with their redemptions and the invoices'
    # credit notes among them).
    with django_assert_num_queries(16):
        client.get("/customers/large/")


def test_load_more_keeps_the_feature_filter(client, ops, busy, catalogue):
    balance_track(customer=busy, feature=catalogue["seats"], value=1, actor=None)
    login(client, ops)
    section = element(page_of(client.get(URL + "?events_feature=messages")), "section-events")
    assert "Seats" not in text(section)
    link = re.search(r'hx-get="(/customers/acme_corp/events/\?[^"]+)"', section).group(1).replace("&amp;", "&")
    assert link.endswith("&events_feature=messages")
    more = page_of(client.get(link, HTTP_HX_REQUEST="true"))
    assert _event_values(more) == [str(i) for i in range(26, 51)]
    assert "events_feature=messages" in more


def test_activity_reads_stripe_and_subscription_changes_as_sentences(client, ops, customer, catalogue):
    from billing.services.subscriptions import customer_product_update
    from customers.services.customers import customer_stripe_link

    cp = product_attach(customer=customer, product=catalogue["pro"], actor=ops)
    customer_stripe_link(customer=customer, stripe_id="cus_Q1", actor=ops)
    customer_product_update(customer_product=cp, actor=None, status="past_due")
    apply_invoice(
        {
            "id": "in_77",
            "customer": "cus_Q1",
            "status": "open",
            "total": 9900,
            "currency": "usd",
            "created": 1_800_000_000,
        },
        env="sandbox",
        created=1_800_000_000,
        reason="webhook",
    )
    activity = [
        text(li)
        for li in re.findall(
            r"<li>.*?</li>", element(page_of(login(client, ops).get(URL)), "section-sidebar-activity"), flags=re.S
        )
    ]
    assert activity[:3] == [
        "system recorded invoice in_77 · open · $99.00 · webhook · just now",
        "system changed Pro from active to past due · just now",
        "olivia_ops linked to Stripe customer cus_Q1 · just now",
    ]


# --- a credit pool ------------------------------------------------------------------------------------


def test_a_credit_pool_shows_the_features_that_draw_from_it_and_their_costs(
    client, ops, ai_customer, credits_catalogue
):
    balance_track(customer=ai_customer, feature=credits_catalogue["messages"], value=15, actor=None)  # 10 own, 1 credit
    balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=5, actor=None)  # 3 credits
    login(client, ops)
    page = page_of(client.get(URL))

    pool = text(element(page, "balance-row-ai_credits"))
    assert "AI credits" in pool and "96 / 100" in pool
    assert "Credit pool drawn by Images 0.6 credits each · Messages 0.2 credits each" in pool
    assert "Last 30 days · 4 credits used" in pool  # the pool's graph counts credits

    messages = text(element(page, "balance-row-messages"))
    assert "0 / 10" in messages and "Then from AI credits at 0.2 credits each" in messages
    assert "Last 30 days · 15 used" in messages

    events = text(element(page, "section-events"))
    assert "AI credits generation" not in events
    assert "credits for 5 Images" in events and "credits for 15 Messages" in events


def test_the_balance_popup_edits_the_pool_like_any_balance(client, ops, ai_customer, credits_catalogue):
    pool = Balance.objects.get(customer=ai_customer, feature=credits_catalogue["ai_credits"])
    login(client, ops)
    popup = client.get(f"{URL}balances/{pool.pk}/edit/", HTTP_HX_REQUEST="true")
    assert popup.status_code == 200 and "AI credits" in text(popup.content.decode())
    response = client.post(
        f"{URL}balances/{pool.pk}/edit/",
        {"mode": "set", "value": "250", "reason": "Launch bonus", "expected_remaining": "100", "next_reset_at": ""},
    )
    assert response.status_code in (200, 302)
    pool.refresh_from_db()
    assert (pool.remaining, pool.granted, pool.usage) == (250, 250, 0)
    balance_track(customer=ai_customer, feature=credits_catalogue["images"], value=10, actor=None)
    pool.refresh_from_db()
    assert pool.remaining == 244


# --- the rows' fragment cache -------------------------------------------------------------------


def test_a_cached_balance_row_shows_every_change_on_the_next_view(client, ops, viewer, acme, catalogue, settings):
    login(client, ops)
    first = element(page_of(client.get(URL)), "balance-row-messages")
    assert element(page_of(client.get(URL)), "balance-row-messages") == first  # served from the cache

    balance_track(customer=acme, feature=catalogue["messages"], value=60, actor=None)
    row = element(page_of(client.get(URL)), "balance-row-messages")
    assert text(row).startswith("Messages messages 1,180 / 1,780 600 Pro")
    today = re.findall(r'<g class="day"><title>(.*?)</title>', row)[-1]
    assert today == f"{format_day(timezone.localdate())}: 100 used"

    Feature.objects.filter(pk=catalogue["messages"].pk).update(name="Texts")
    assert text(element(page_of(client.get(URL)), "balance-row-messages")).startswith("Texts messages")

    settings.TIME_ZONE = "Pacific/Kiritimati"  # dates are shown in another zone: rendered afresh
    row = element(page_of(client.get(URL)), "balance-row-messages")
    balance = Balance.objects.get(customer=acme, feature=catalogue["messages"])
    with timezone.override("Pacific/Kiritimati"):
        assert format_day(balance.next_reset_at) in text(row)

    login(client, viewer)  # the same row, for a role that may not edit it
    assert "balances/" not in element(page_of(client.get(URL)), "balance-row-messages")


def test_a_cached_credit_pool_row_shows_a_changed_credit_cost_on_the_next_view(
    client, ops, ai_customer, credits_catalogue
):
    login(client, ops)
    assert "Messages 0.2 credits each" in text(element(page_of(client.get(URL)), "balance-row-ai_credits"))
    CreditCost.objects.filter(metered_feature=credits_catalogue["messages"]).update(credit_cost="0.25")
    page = page_of(client.get(URL))
    assert "Messages 0.25 credits each" in text(element(page, "balance-row-ai_credits"))
    assert "Then from AI credits at 0.25 credits each" in text(element(page, "balance-row-messages"))


def test_the_referrals_card_shows_the_customers_codes_who_redeemed_them_and_the_reward(
    client, ops, customer, other_customer, discount_rewards
):
    program = referral_program_create(
        env="sandbox",
        program_id="friends",
        reward=discount_rewards["twenty"],
        redeem_on="customer_creation",
        received_by="all",
        actor=None,
    )
    code = referral_code_create(customer=customer, program=program, actor=None)
    referral_code_redeem(customer=other_customer, code=code.code, actor=None)
    login(client, ops)

    page = client.get("/customers/acme_corp/").content.decode()

    card = page[page.index('id="section-sidebar-referrals"') :]
    card = card[: card.index("</section>")]
    assert code.code in card and "friends" in card and "20% off (both parties)" in card
    assert "Redeemed by" in card and "globex" in card
    assert "reward granted to this customer and globex" in card
