"""The upcoming invoice's rules, and how money, quantities and times are written on the dashboard."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.intervals import add_intervals
from billing.invoice_preview import upcoming_invoice
from billing.models import Balance, CustomerProduct, Reward
from billing.money import format_money
from billing.services.balances import balance_create
from billing.services.products import product_attach
from billing.services.rewards import reward_apply
from billing.services.track import balance_track
from billing.templatetags.billing_format import when
from customers.formatting import format_ago, format_qty


def lines(invoice) -> list[tuple[str, int]]:
    return [(line.description, line.amount) for line in invoice.lines]


@pytest.fixture
def on_scale(customer, catalogue, ops):
    product_attach(customer=customer, product=catalogue["scale"], actor=ops)
    return customer


def test_overage_counts_every_started_block_of_billing_units(on_scale, catalogue):
    balance_track(customer=on_scale, feature=catalogue["api_calls"], value=100_001, actor=None)
    assert lines(upcoming_invoice(on_scale)) == [("Scale", 25000), ("API calls overage", 100)]


def test_usage_item_without_overage_yet_gets_no_line(on_scale, catalogue):
    balance_track(customer=on_scale, feature=catalogue["api_calls"], value=100_000, actor=None)  # all used, none over
    invoice = upcoming_invoice(on_scale)
    assert lines(invoice) == [("Scale", 25000)]
    assert invoice.total == 25000


def test_percentages_apply_before_fixed_discounts_and_never_below_zero(on_scale, ops):
    ten = Reward.objects.create(
        reward_id="ten", name="10%", type="percentage_discount", value=Decimal("12.5"), duration="forever"
    )
    big = Reward.objects.create(
        reward_id="big", name="$500 off", type="fixed_discount", value=50000, duration="one_off"
    )
    reward_apply(customer=on_scale, reward=big, actor=ops)
    reward_apply(customer=on_scale, reward=ten, actor=ops)
    invoice = upcoming_invoice(on_scale)
    # 12.5 % of $250.00 is $31.25; the $500 coupon takes what is left, not more.
    assert lines(invoice)[1:] == [("10%", -3125), ("$500 off", -21875)]
    assert (invoice.subtotal, invoice.total) == (25000, 0)


def test_a_fixed_discount_in_another_currency_or_an_expired_coupon_does_not_apply(on_scale, ops):
    euros = Reward.objects.create(
        reward_id="eur", name="€5 off", type="fixed_discount", value=500, currency="eur", duration="forever"
    )
    short = Reward.objects.create(
        reward_id="short", name="Short", type="percentage_discount", value=50, duration="months", duration_months=1
    )
    reward_apply(customer=on_scale, reward=euros, actor=ops)
    reward_apply(customer=on_scale, reward=short, actor=ops, now=timezone.now() - timedelta(days=40))
    assert upcoming_invoice(on_scale).total == 25000


def test_a_coupon_ending_before_the_invoice_date_is_left_out(on_scale, ops):
    ends_soon = Reward.objects.create(
        reward_id="soon", name="Soon", type="percentage_discount", value=50, duration="months", duration_months=1
    )
    applied = reward_apply(customer=on_scale, reward=ends_soon, actor=ops)
    applied.expires_at = timezone.now() + timedelta(days=3)  # the invoice is a month away
    applied.save()
    assert upcoming_invoice(on_scale).total == 25000


def test_what_a_balance_edit_would_do_to_the_invoice(on_scale, catalogue):
    balance = Balance.objects.get(customer=on_scale, feature=catalogue["api_calls"])
    invoice = upcoming_invoice(on_scale, remaining_overrides={balance.pk: Decimal(-12_500)})
    assert lines(invoice)[1] == ("API calls overage", 1300)
    assert invoice.lines[1].detail == "12,500 × $1.00 per 1,000"


def test_only_a_plan_balance_that_allows_overage_is_charged_at_its_usage_price(on_scale, catalogue, ops):
    calls = Balance.objects.get(customer=on_scale, feature=catalogue["api_calls"])
    messages = Balance.objects.get(customer=on_scale, feature=catalogue["messages"], customer_product__isnull=False)
    grant = balance_create(customer=on_scale, feature=catalogue["api_calls"], actor=ops, granted=5, reason="Promo")
    assert (calls.overage_price().amount, calls.overage_price().billing_units) == (100, 1000)
    assert messages.usage_price() is None and messages.overage_price() is None  # Scale prices no message usage
    assert grant.usage_price() is None and grant.overage_price() is None  # a grant outside any plan
    Balance.objects.filter(pk=calls.pk).update(overage_allowed=False)
    calls.refresh_from_db()
    assert calls.usage_price().amount == 100 and calls.overage_price() is None
    scale = catalogue["scale"]
    assert [scale.item_usage_price(item) is not None for item in scale.items.order_by("id")] == [True, False]


def test_the_invoice_date_is_the_next_period_end_even_when_a_renewal_was_missed(on_scale):
    cp = CustomerProduct.objects.get(customer=on_scale, product__product_id="scale")
    now = timezone.now()
    stale = now - timedelta(days=3)
    CustomerProduct.objects.filter(pk=cp.pk).update(current_period_end=stale)
    assert upcoming_invoice(on_scale, now=now).date == add_intervals(stale, "month")


def test_trialing_products_are_billed_after_the_trial(customer, catalogue, ops):
    ends = timezone.now() + timedelta(days=14)
    product_attach(customer=customer, product=catalogue["pro"], actor=ops, status="trialing", trial_ends_at=ends)
    invoice = upcoming_invoice(customer)
    assert invoice.lines[0].detail.startswith("monthly · after the trial ends ")


def test_free_products_only_mean_nothing_to_charge(customer):
    invoice = upcoming_invoice(customer)
    assert invoice.lines == [] and invoice.total == 0


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (123456, "usd", "$1,234.56"),
        (-1980, "usd", "−$19.80"),
        (0, "eur", "€0.00"),
        (5, "gbp", "£0.05"),
        (1200, "jpy", "¥1,200"),
        (99900, "chf", "CHF 999.00"),
        (1050, "pln", "10.50 PLN"),
        (12345, "kwd", "12.345 KWD"),
    ],
)
def test_money_has_its_symbol_and_the_currencys_decimals(minor, currency, expected):
    assert format_money(minor, currency) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1240.000000"), "1,240"),
        (Decimal("12.500000"), "12.5"),
        (Decimal("-300"), "−300"),
        (Decimal("0.000001"), "0.000001"),
        (1000000, "1,000,000"),
        (None, "—"),
    ],
)
def test_quantities_have_thousands_separators_and_no_trailing_zeros(value, expected):
    assert format_qty(value) == expected


def test_dates_carry_the_full_timestamp_and_relative_times_read_naturally():
    now = timezone.now()
    moment = now.replace(year=2026, month=12, day=12, hour=14, minute=5, second=9, microsecond=0)
    assert str(when(moment)) == (
        f'<time datetime="{moment.isoformat()}" title="12 Dec 2026, 14:05:09 UTC">12 Dec 2026</time>'
    )
    assert format_ago(now - timedelta(seconds=10), now) == "just now"
    assert format_ago(now - timedelta(minutes=2), now) == "2 min ago"
    assert format_ago(now - timedelta(hours=2, minutes=59), now) == "2 h ago"
    assert format_ago(now - timedelta(days=1, hours=3), now) == "1 day ago"
    assert (
        format_ago(now - timedelta(days=45), now) == f"{(now - timedelta(days=45)).day} "
        f"{now - timedelta(days=45):%b %Y}"
    )
