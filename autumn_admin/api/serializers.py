"""Our rows in Autumn's shapes. Times are epoch milliseconds, quantities JSON numbers, money major units."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from billing.models import (
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    CustomerReward,
    Event,
    Feature,
    FeatureType,
    Interval,
    Invoice,
    Price,
    UsageType,
)
from billing.money import decimals_of
from billing.quantities import to_number
from billing.services.balances import FeatureBalance, balances_reset_due
from customers.models import Customer

SHOWN_PRODUCT_STATUSES = (
    CustomerProductStatus.ACTIVE,
    CustomerProductStatus.TRIALING,
    CustomerProductStatus.PAST_DUE,
    CustomerProductStatus.SCHEDULED,
)
EXPANDED_INVOICES = 100


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def major_units(amount: int, currency: str):
    """Stripe's minor units (cents) as Autumn shows money: 2999 usd → 29.99."""
    return to_number(Decimal(amount) / 10 ** decimals_of(currency))


def balance_id(balance: Balance) -> str:
    return f"bal_{balance.pk}"


# --- loading ------------------------------------------------------------------------------------


def with_api_relations(customers):
    """A customer queryset with everything `customer_json` reads, in a constant number of queries."""
    products = (
        CustomerProduct.objects.filter(status__in=SHOWN_PRODUCT_STATUSES)
        .select_related("product")
        .prefetch_related("product__prices")
        .order_by("started_at", "id")
    )
    balances = (
        Balance.objects.select_related("feature", "customer_product__product")
        .prefetch_related("customer_product__product__prices")
        .order_by("id")
    )
    return customers.prefetch_related(
        Prefetch("customer_products", queryset=products, to_attr="api_products"),
        Prefetch("balances", queryset=balances, to_attr="api_balances"),
    )


def load_customer(customer: Customer) -> Customer:
    """Apply due resets, then read the customer again with its products and balances."""
    balances_reset_due(customer=customer)
    return with_api_relations(Customer.objects.filter(pk=customer.pk)).get()


def load_customers(customers: list[Customer]) -> list[Customer]:
    now = timezone.now()
    due = set(
        Balance.objects.filter(customer__in=customers, next_reset_at__lte=now)
        .exclude(interval=Interval.LIFETIME)
        .values_list("customer_id", flat=True)
    )
    for customer in customers:
        if customer.pk in due:
            balances_reset_due(customer=customer, now=now)
    by_pk = {c.pk: c for c in with_api_relations(Customer.objects.filter(pk__in=[c.pk for c in customers]))}
    return [by_pk[c.pk] for c in customers if c.pk in by_pk]


# --- balances -----------------------------------------------------------------------------------

_LOOK_UP = object()


def _usage_price(balance: Balance) -> Price | None:
    cp = balance.customer_product
    return cp.product.usage_price_for(balance.feature_id) if cp is not None else None


def breakdown_json(balance: Balance, price: Price | None = _LOOK_UP) -> dict:
    """One balance; its usage price is looked up in its product's prices unless the caller has it."""
    if price is _LOOK_UP:
        price = _usage_price(balance)
    resets = balance.interval != Interval.LIFETIME
    return {
        "id": balance_id(balance),
        "plan_id": balance.customer_product.product.product_id if balance.customer_product_id else None,
        "included_grant": to_number(balance.granted),
        "prepaid_grant": 0,
        "remaining": to_number(max(balance.remaining, Decimal(0))),
        "usage": to_number(balance.usage),
        "unlimited": balance.unlimited,
        "reset": {
            "interval": balance.interval,
            "interval_count": balance.interval_count,
            "resets_at": ms(balance.next_reset_at),
        }
        if resets
        else None,
        "price": {
            "amount": major_units(price.amount, price.currency),
            "billing_units": to_number(price.billing_units),
            "billing_method": "usage_based",
            "max_purchase": None,
        }
        if price
        else None,
        "expires_at": None,
    }


def balance_json(fb: FeatureBalance, prices: dict[int, Price | None] | None = None) -> dict:
    """All of a customer's balances of one feature, added up; `breakdown` lists each. `prices`: the usage
    price of each balance (by pk) where the caller already has it."""
    return {
        "feature_id": fb.feature.feature_id,
        "granted": to_number(fb.granted),
        # Autumn reports what is left, never below zero; usage beyond the allowance shows in `usage`.
        "remaining": to_number(max(fb.remaining, Decimal(0))),
        "usage": to_number(fb.usage),
        "unlimited": fb.unlimited,
        "overage_allowed": fb.overage_allowed,
        "max_purchase": None,
        "next_reset_at": ms(fb.next_reset_at),
        "breakdown": [breakdown_json(b, *([prices[b.pk]] if prices and b.pk in prices else [])) for b in fb.balances],
    }


def flag_json(feature: Feature, balances: list[Balance]) -> dict:
    first = balances[0]
    return {
        "id": balance_id(first),
        "plan_id": first.customer_product.product.product_id if first.customer_product_id else None,
        "expires_at": None,
        "feature_id": feature.feature_id,
    }


def grouped_balances(balances: Iterable[Balance]) -> dict[Feature, list[Balance]]:
    grouped: dict[int, list[Balance]] = defaultdict(list)
    features: dict[int, Feature] = {}
    for b in balances:
        grouped[b.feature_id].append(b)
        features[b.feature_id] = b.feature
    ordered = sorted(grouped, key=lambda pk: features[pk].feature_id)
    return {features[pk]: grouped[pk] for pk in ordered}


# --- products -----------------------------------------------------------------------------------


def is_one_off(cp: CustomerProduct) -> bool:
    return cp.product.is_one_off


def subscription_json(cp: CustomerProduct) -> dict:
    canceled = cp.canceled_at is not None
    return {
        "id": cp.stripe_subscription_id or f"cus_prod_{cp.pk}",
        "plan_id": cp.product.product_id,
        "auto_enable": cp.product.is_default,
        "add_on": cp.product.is_add_on,
        # Autumn's two states: trials and overdue subscriptions are active (see trial_ends_at, past_due).
        "status": "scheduled" if cp.status == CustomerProductStatus.SCHEDULED else "active",
        "past_due": cp.status == CustomerProductStatus.PAST_DUE,
        "canceled_at": ms(cp.canceled_at),
        "expires_at": ms(cp.ended_at or (cp.current_period_end if canceled else None)),
        "trial_ends_at": ms(cp.trial_ends_at),
        "started_at": ms(cp.started_at),
        "current_period_start": ms(cp.current_period_start),
        "current_period_end": ms(cp.current_period_end),
        "quantity": cp.quantity,
    }


def purchase_json(cp: CustomerProduct) -> dict:
    return {
        "plan_id": cp.product.product_id,
        "expires_at": ms(cp.ended_at),
        "started_at": ms(cp.started_at),
        "quantity": cp.quantity,
    }


def legacy_product_json(cp: CustomerProduct) -> dict:
    product = cp.product
    return {
        "id": product.product_id,
        "name": product.name,
        "group": product.group or None,
        "status": cp.status,
        "canceled_at": ms(cp.canceled_at),
        "started_at": ms(cp.started_at),
        "is_default": product.is_default,
        "is_add_on": product.is_add_on,
        "version": product.version,
        "stripe_subscription_ids": [cp.stripe_subscription_id] if cp.stripe_subscription_id else [],
        "current_period_start": ms(cp.current_period_start),
        "current_period_end": ms(cp.current_period_end),
        "quantity": cp.quantity,
    }


def _legacy_feature_type(feature: Feature) -> str:
    if feature.type == FeatureType.BOOLEAN:
        return "boolean"
    if feature.type == FeatureType.CREDIT_SYSTEM:
        return "credit_system"
    return feature.usage_type or UsageType.SINGLE_USE


def legacy_feature_json(fb: FeatureBalance) -> dict:
    intervals = {(b.interval, b.interval_count) for b in fb.balances}
    interval, count = next(iter(intervals)) if len(intervals) == 1 else ("multiple", None)
    return {
        "id": fb.feature.feature_id,
        "type": _legacy_feature_type(fb.feature),
        "name": fb.feature.name,
        "interval": interval,
        "interval_count": count,
        "unlimited": fb.unlimited,
        "balance": to_number(fb.remaining),
        "usage": to_number(fb.usage),
        "included_usage": to_number(fb.granted),
        "next_reset_at": ms(fb.next_reset_at),
        "overage_allowed": fb.overage_allowed,
        "usage_limit": to_number(fb.usage_limit),
    }


# --- invoices, events, rewards ------------------------------------------------------------------


def invoice_json(invoice: Invoice, customer_id: str) -> dict:
    return {
        "id": f"inv_{invoice.pk}",
        "customer_id": customer_id,
        "entity_id": None,
        "plan_ids": list(invoice.product_ids or []),
        "stripe_id": invoice.stripe_id or "",
        "processor_type": "stripe",
        "status": invoice.status,
        "total": major_units(invoice.total, invoice.currency),
        "amount_paid": major_units(invoice.amount_paid, invoice.currency),
        "refunded_amount": 0,
        "currency": invoice.currency,
        "created_at": ms(invoice.created_at),
        "hosted_invoice_url": invoice.hosted_invoice_url or None,
    }


def event_json(event: Event, customer_id: str) -> dict:
    return {
        "id": f"evt_{event.pk}",
        "timestamp": ms(event.timestamp),
        "feature_id": event.feature.feature_id if event.feature_id else event.event_name,
        "customer_id": customer_id,
        "value": to_number(event.value),
        "properties": event.properties or {},
        "deductions": None,
    }


def rewards_json(customer: Customer) -> dict:
    applied = (
        CustomerReward.objects.filter(customer=customer, removed_at__isnull=True)
        .select_related("reward")
        .order_by("applied_at", "id")
    )
    return {
        "discounts": [
            {
                "id": cr.reward.reward_id,
                "name": cr.reward.name,
                "type": cr.reward.type,
                "discount_value": to_number(cr.reward.value),
                "duration_type": cr.reward.duration,
                "duration_value": cr.reward.duration_months,
                "currency": cr.reward.currency or None,
                "start": ms(cr.applied_at),
                "end": ms(cr.expires_at),
            }
            for cr in applied
        ]
    }


# --- customers ----------------------------------------------------------------------------------


def customer_json(customer: Customer, *, expand: Iterable[str] = (), legacy: bool = False) -> dict:
    """A customer loaded with `with_api_relations`, in the shape Autumn's clients require."""
    products = getattr(customer, "api_products", None)
    balances = getattr(customer, "api_balances", None)
    if products is None or balances is None:
        customer = load_customer(customer)
        products, balances = customer.api_products, customer.api_balances
    metered, flags = {}, {}
    legacy_features = {}
    for feature, group in grouped_balances(balances).items():
        fb = FeatureBalance.of(feature, group)
        if feature.type == FeatureType.BOOLEAN:
            flags[feature.feature_id] = flag_json(feature, group)
        else:
            metered[feature.feature_id] = balance_json(fb)
        if legacy:
            legacy_features[feature.feature_id] = legacy_feature_json(fb)
    data = {
        "id": customer.customer_id,
        "name": customer.name or None,
        "email": customer.email or None,
        "created_at": ms(customer.created_at),
        "fingerprint": customer.fingerprint or None,
        "stripe_id": customer.stripe_id or None,
        "env": customer.env,
        "metadata": customer.metadata or {},
        "send_email_receipts": customer.send_email_receipts,
        "billing_controls": {},
        "subscriptions": [subscription_json(cp) for cp in products if not is_one_off(cp)],
        "purchases": [purchase_json(cp) for cp in products if is_one_off(cp)],
        "licenses": [],
        "balances": metered,
        "flags": flags,
    }
    expand = set(expand or ())
    if "invoices" in expand:
        invoices = customer.invoices.order_by("-created_at", "-id")[:EXPANDED_INVOICES]
        data["invoices"] = [invoice_json(i, customer.customer_id) for i in invoices]
    if "rewards" in expand:
        data["rewards"] = rewards_json(customer)
    if legacy:
        data["products"] = [legacy_product_json(cp) for cp in products]
        data["features"] = legacy_features
    return data


def track_json(
    *,
    customer: Customer,
    feature: Feature,
    value: Decimal,
    balances: list[Balance],
    event_name: str | None = None,
    prices: dict[int, Price | None] | None = None,
) -> dict:
    """The answer to a track: the customer's balance of the feature after it."""
    answer = {
        "customer_id": customer.customer_id,
        "value": to_number(value),
        "balance": balance_json(FeatureBalance.of(feature, balances), prices) if balances else None,
    }
    if event_name:
        answer["event_name"] = event_name
    return answer
