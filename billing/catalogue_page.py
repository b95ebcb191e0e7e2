"""The catalogue as ops read it: every plan with its versions, price and items, and every feature with its
credit costs, in sentences a person reads ("5,000 / month", "$1.00 per 1,000 beyond, up to 2,000,000").
A fixed number of queries, however large the catalogue. How many customers hold each version is counted
in one environment only: the one being looked at."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch

from billing.models import (
    HELD_PRODUCT_STATUSES,
    CreditCost,
    CustomerProduct,
    Feature,
    FeatureType,
    Interval,
    Price,
    Product,
    ProductItem,
    Reward,
    UsageType,
)
from billing.money import format_money
from billing.selectors import per_interval
from customers.formatting import format_qty

FEATURE_KINDS = {
    (FeatureType.BOOLEAN, ""): "Boolean",
    (FeatureType.METERED, UsageType.SINGLE_USE): "Metered · used up, resets",
    (FeatureType.METERED, UsageType.CONTINUOUS_USE): "Metered · allocated (seats)",
    (FeatureType.CREDIT_SYSTEM, UsageType.SINGLE_USE): "Credit system",
}


@dataclass
class ItemRow:
    feature: Feature
    included: str
    resets: str
    overage: str


@dataclass
class PlanVersion:
    product: Product
    price: str
    items: list[ItemRow]
    customers: int


@dataclass
class PlanRow:
    newest: PlanVersion
    older: list[PlanVersion] = field(default_factory=list)


@dataclass
class FeatureRow:
    feature: Feature
    kind: str
    credit_costs: list[CreditCost]
    used_by: list[CreditCost]


def price_text(product: Product) -> str:
    """What a plan costs, as the catalogue says it: "$99.00 / month", "$50.00 once" or "Free"."""
    fixed = [p for p in product.prices.all() if p.type == Price.Type.FIXED]
    price = product.recurring_price or (fixed[0] if fixed else None)
    if price is None:
        return "Free"
    if price.interval == "one_off":
        return f"{format_money(price.amount, price.currency)} once"
    return f"{format_money(price.amount, price.currency)} {per_interval(price.interval, price.interval_count)}"


def _item(product: Product, item: ProductItem) -> ItemRow:
    feature = item.feature
    if feature.type == FeatureType.BOOLEAN:
        return ItemRow(feature, "Included", "—", "—")
    included = "Unlimited" if item.unlimited else format_qty(item.included)
    every = per_interval(item.interval, item.interval_count).removeprefix("/ ")
    resets = f"every {every}" if every else Interval.LIFETIME.label  # "Never resets", as on every page
    usage = product.item_usage_price(item)
    if usage is not None:
        units = "" if usage.billing_units == 1 else f"{format_qty(usage.billing_units)} "
        overage = f"{format_money(usage.amount, usage.currency)} per {units}beyond".replace("per beyond", "each beyond")
        if item.usage_limit is not None:
            overage += f", up to {format_qty(item.usage_limit)}"
    elif item.overage_allowed:
        overage = "allowed, not charged"
    else:
        overage = "stops at the allowance"
    return ItemRow(feature, included, resets, overage)


def catalogue_plans(env: str) -> list[PlanRow]:
    """Every catalogue plan (never a customer's custom copy), newest version first, with how many customers
    of `env` hold each version."""
    products = (
        Product.objects.filter(custom_for__isnull=True)
        .prefetch_related(
            Prefetch("items", queryset=ProductItem.objects.select_related("feature").order_by("id")),
            Prefetch("prices", queryset=Price.objects.order_by("id")),
        )
        .order_by("archived", "is_add_on", "product_id", "-version")
    )
    held = dict(
        CustomerProduct.objects.filter(
            status__in=HELD_PRODUCT_STATUSES,
            customer__env=env,
            customer__deleted_at__isnull=True,
            product__custom_for__isnull=True,
        )
        .values_list("product_id")
        .annotate(n=Count("customer", distinct=True))
    )
    rows: dict[str, PlanRow] = {}
    for p in products:
        version = PlanVersion(p, price_text(p), [_item(p, i) for i in p.items.all()], held.get(p.pk, 0))
        if p.product_id in rows:
            rows[p.product_id].older.append(version)
        else:
            rows[p.product_id] = PlanRow(version)
    return list(rows.values())


def catalogue_features() -> list[FeatureRow]:
    features = list(Feature.objects.order_by("archived", "name"))
    costs = list(CreditCost.objects.select_related("credit_system", "metered_feature"))
    return [
        FeatureRow(
            f,
            FEATURE_KINDS.get((f.type, f.usage_type), f.get_type_display()),
            [c for c in costs if c.credit_system_id == f.pk],
            [c for c in costs if c.metered_feature_id == f.pk],
        )
        for f in features
    ]


def catalogue_rewards() -> list[Reward]:
    """Every reward (coupons, free products, feature grants), active ones first, by name; one query."""
    return list(Reward.objects.select_related("free_product", "grant_feature").order_by("-active", "name", "pk"))
