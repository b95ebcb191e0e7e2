"""Reads of a customer's billing: its products, its balances per feature, its events and invoices (paged in
SQL) and its coupons. Each function runs a fixed number of queries, whatever the amount of data, so the
customer page stays fast for the biggest customers. The usage graphs are `billing/usage_graph.py`, the
upcoming invoice `billing/invoice_preview.py`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import BadRequest
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from billing.engine.decide import FeatureBalance
from billing.intervals import INTERVAL_WORDS
from billing.models import (
    DISCOUNT_REWARD_TYPES,
    LIVE_PRODUCT_STATUSES,
    Balance,
    CreditCost,
    CustomerProduct,
    CustomerProductStatus,
    CustomerReward,
    Entity,
    Event,
    Feature,
    FeatureType,
    Invoice,
    Price,
    ProductItem,
    ReferralCode,
    Reward,
    RewardDuration,
    RewardType,
    UsageType,
)
from billing.money import format_money
from billing.quantities import overage
from billing.usage_graph import UsageHistory
from customers.errors import Conflict, ServiceError
from customers.formatting import format_qty
from customers.models import Customer
from customers.paging import InvalidCursor, Page, keyset_page

EVENTS_PAGE_SIZE = 25
INVOICES_PAGE_SIZE = 10

STATUS_ORDER = {
    CustomerProductStatus.PAST_DUE: 0,
    CustomerProductStatus.ACTIVE: 1,
    CustomerProductStatus.TRIALING: 2,
    CustomerProductStatus.SCHEDULED: 3,
    CustomerProductStatus.EXPIRED: 4,
}


def per_interval(interval: str, count: int = 1) -> str:
    """ "/ month", "/ 3 months", or "" for a lifetime allowance."""
    if interval not in INTERVAL_WORDS:
        return ""
    one, many = INTERVAL_WORDS[interval]
    return f"/ {one}" if count == 1 else f"/ {count} {many}"


# --- products ------------------------------------------------------------------------------------


@dataclass
class Limit:
    """One feature a product includes, as the customer gets it."""

    feature: Feature
    amount: Decimal | None
    unlimited: bool
    interval_text: str
    overage_allowed: bool

    @property
    def is_boolean(self) -> bool:
        return self.feature.type == FeatureType.BOOLEAN


@dataclass
class ProductRow:
    cp: CustomerProduct
    limits: list[Limit]

    @property
    def is_live(self) -> bool:
        return self.cp.status in LIVE_PRODUCT_STATUSES


def customer_products(customer: Customer) -> list[CustomerProduct]:
    """Every product the customer has had, with items and prices: 3 queries."""
    return list(
        CustomerProduct.objects.filter(customer=customer)
        .select_related("product")
        .prefetch_related(
            Prefetch("product__items", queryset=ProductItem.objects.select_related("feature").order_by("id")),
            Prefetch("product__prices", queryset=Price.objects.select_related("feature").order_by("id")),
        )
    )


def product_rows(cps: list[CustomerProduct]) -> list[ProductRow]:
    """Live products first (past due on top, it needs attention; plans before add-ons), then
    scheduled, then ended ones."""
    rows = []
    for cp in cps:
        limits = [
            Limit(
                feature=item.feature,
                amount=None if item.unlimited else item.included * cp.quantity,
                unlimited=item.unlimited,
                interval_text=per_interval(item.interval, item.interval_count),
                overage_allowed=item.overage_allowed,
            )
            for item in cp.product.items.all()
        ]
        rows.append(ProductRow(cp=cp, limits=limits))
    rows.sort(
        key=lambda r: (STATUS_ORDER.get(r.cp.status, 9), r.cp.product.is_add_on, -r.cp.started_at.timestamp(), -r.cp.pk)
    )
    return rows


# --- which balance an edit targets ----------------------------------------------------------------

PREFER_GRANT = "grant"  # among several: the grants outside any plan (only they can be deleted)
PREFER_PLAN = "plan"  # among several: the plan's (the oldest plan's), else the oldest grant; never ambiguous


def balance_to_edit(
    customer: Customer,
    feature: Feature | None = None,
    *,
    balance_id: str | None = None,
    interval: str | None = None,
    prefer: str | None = None,
    limited: bool = False,
) -> Balance:
    """The one balance an edit changes: every edit's rule (balances.update and .delete, the 1.2 /usage, the bulk
    actions that set or add to a balance). The candidates are the customer's balances that have not expired, of
    `feature` (of any feature when None), narrowed by `balance_id` and `interval`; `limited` leaves out the
    unlimited ones (they have no number to edit). Among several, `prefer` picks (PREFER_GRANT, PREFER_PLAN).

    Refused, nothing being found to edit, with `balance_not_found` (404), `balance_unlimited` (409: only
    unlimited ones) or `multiple_balances` (409: several remain; the message lists their ids)."""
    balances = Balance.objects.filter(customer=customer).select_related("feature").order_by("id")
    if feature is not None:
        balances = balances.filter(feature=feature)
    balances = list(balances)
    if balance_id is not None:
        balances = [b for b in balances if b.balance_id == balance_id]
    if interval is not None:
        balances = [b for b in balances if b.interval == interval]
    of = f" of {feature.feature_id}" if feature else ""
    if not balances:
        raise ServiceError(f"{customer.customer_id} has no such balance{of}.", code="balance_not_found", status=404)
    if limited:
        balances = [b for b in balances if not b.unlimited]
        if not balances:
            raise Conflict(
                f"{customer.customer_id}'s balance{of} is unlimited: no number to edit.", code="balance_unlimited"
            )
    if len(balances) > 1 and prefer == PREFER_GRANT:
        balances = [b for b in balances if b.is_granted] or balances
    elif len(balances) > 1 and prefer == PREFER_PLAN:
        planned = sorted((b for b in balances if not b.is_granted), key=lambda b: (b.customer_product_id, b.pk))
        balances = (planned or balances)[:1]
    if len(balances) > 1:
        raise Conflict(
            f"{customer.customer_id} has {len(balances)} balances{of} "
            f"({', '.join(b.balance_id for b in balances)}): name the one you mean by its balance_id.",
            code="multiple_balances",
        )
    return balances[0]


# --- balances ------------------------------------------------------------------------------------


def _balances_query(customer: Customer) -> QuerySet[Balance]:
    return Balance.objects.filter(customer=customer).select_related("feature", "customer_product__product")


def customer_balances(customer: Customer) -> list[Balance]:
    """The customer's balances that have not expired, as stored: a caller that shows them brings the customer
    current first (`billing.services.current`), so no due reset is shown undone."""
    return list(_balances_query(customer))


def credit_schemas(features) -> list[CreditCost]:
    """The credit schema lines that involve these features, as pools or as features drawing from one (not
    of archived pools too: their balances still count), with both features. One query."""
    pks = [f.pk for f in features]
    if not pks:
        return []
    return list(
        CreditCost.objects.filter(Q(credit_system_id__in=pks) | Q(metered_feature_id__in=pks))
        .select_related("credit_system", "metered_feature")
        .order_by("credit_system__name", "metered_feature__name", "id")
    )


@dataclass
class FeatureRow(FeatureBalance):
    """One row of Available Features: every balance the customer has of one feature, added up."""

    history: UsageHistory | None = None
    # A credit system's: the features that draw from its pool, and their costs. A metered feature's: the
    # pools it falls back to once its own balance is used up.
    credit_schema: list[CreditCost] = field(default_factory=list)
    draws_from: list[CreditCost] = field(default_factory=list)

    @property
    def is_credit_system(self) -> bool:
        return self.feature.type == FeatureType.CREDIT_SYSTEM

    @property
    def feature_id(self) -> str:
        return self.feature.feature_id

    @property
    def is_boolean(self) -> bool:
        return self.feature.type == FeatureType.BOOLEAN

    @property
    def editable(self) -> bool:
        """Boolean and unlimited balances have no number to edit."""
        return not self.is_boolean and not self.unlimited

    @property
    def primary(self) -> Balance:
        """The balance an edit of the row changes: the first grant (the plan's, usually)."""
        return self.balances[0]

    @property
    def sources(self) -> list[str]:
        names = []
        for b in self.balances:
            name = str(b.customer_product.product) if b.customer_product_id else "Granted"
            if name not in names:
                names.append(name)
        return names

    @property
    def overage(self) -> Decimal:
        return overage(self.remaining)

    @property
    def fingerprint(self) -> tuple:
        """Everything the row can show, for caching its markup (the customer page's `balance-row`): the
        feature, every field of every balance with the product it comes from, the graph, the credit schema
        lines it lists, and the time zone its dates are shown in. Two rows with equal fingerprints look the same."""
        return (
            timezone.get_current_timezone_name(),
            tuple(getattr(self.feature, f.attname) for f in Feature._meta.concrete_fields),
            tuple(
                (
                    tuple(getattr(b, f.attname) for f in Balance._meta.concrete_fields),
                    str(b.customer_product.product) if b.customer_product_id else None,
                )
                for b in self.balances
            ),
            self.history.fingerprint if self.history else None,
            tuple(
                (c.credit_system.feature_id, c.credit_system.name, c.metered_feature.feature_id)
                + (c.metered_feature.name, c.credit_cost)
                for c in (*self.credit_schema, *self.draws_from)
            ),
        )

    @property
    def usage_percent(self) -> int:
        """How full the usage bar is."""
        if self.unlimited or self.is_boolean:
            return 0
        if self.granted <= 0:
            return 100 if self.usage > 0 else 0
        return max(0, min(100, round(self.usage / self.granted * 100)))

    @property
    def level(self) -> str:
        """How worried to look: "over" past the allowance, "high" at 90 %, else "ok"."""
        if self.remaining < 0:
            return "over"
        if self.usage_percent >= 90:
            return "high"
        return "ok"


def feature_rows(
    balances: list[Balance],
    history: dict[int, UsageHistory] | None = None,
    schemas: list[CreditCost] | None = None,
) -> list[FeatureRow]:
    """Metered features first, then boolean ones; alphabetical within each. `schemas`: the credit schema
    lines involving them (`credit_schemas`), shown on the pools and on the features that draw from them."""
    grouped: dict[int, list[Balance]] = defaultdict(list)
    for b in sorted(balances, key=lambda b: b.pk):
        grouped[b.feature_id].append(b)
    rows = []
    for group in grouped.values():
        row = FeatureRow.of(group[0].feature, group)
        row.history = (history or {}).get(group[0].feature_id)
        row.credit_schema = [line for line in schemas or [] if line.credit_system_id == row.feature.pk]
        row.draws_from = [line for line in schemas or [] if line.metered_feature_id == row.feature.pk]
        rows.append(row)
    rows.sort(key=lambda r: (r.is_boolean, r.feature.name.lower()))
    return rows


# --- paging (keyset on time and id, newest first: customers/paging.py) ------------------------


def _keyset_page(qs: QuerySet, *, time_field: str, before: str | None, limit: int, name: str) -> Page:
    """A malformed cursor is the client's mistake (400), not ours."""
    try:
        return keyset_page(qs, time_field=time_field, cursor=before, limit=limit)
    except InvalidCursor as exc:
        raise BadRequest(f"The {name} paging cursor {str(exc)!r} is not valid.")


def events_page(
    customer: Customer, *, before: str | None = None, feature_id: str | None = None, limit: int = EVENTS_PAGE_SIZE
) -> Page:
    qs = Event.objects.filter(customer=customer).select_related("feature", "drawn_for__feature")
    if feature_id and "\x00" in feature_id:
        qs = qs.none()  # no feature id has a NUL, and PostgreSQL refuses to compare with one
    elif feature_id:
        qs = qs.filter(feature__feature_id=feature_id)
    return _keyset_page(qs, time_field="timestamp", before=before, limit=limit, name="events")


def invoices_page(customer: Customer, *, before: str | None = None, limit: int = INVOICES_PAGE_SIZE) -> Page:
    qs = Invoice.objects.filter(customer=customer).prefetch_related("credit_notes")
    return _keyset_page(qs, time_field="created_at", before=before, limit=limit, name="invoices")


# --- rewards -------------------------------------------------------------------------------------


@dataclass
class RewardRow:
    applied: CustomerReward
    now: datetime

    @property
    def reward(self):
        return self.applied.reward

    @property
    def expired(self) -> bool:
        return self.applied.expires_at is not None and self.applied.expires_at <= self.now

    @property
    def summary(self) -> str:
        """ "20% off", "$10.00 off", "Free Pro", "+500 Messages"."""
        r = self.reward
        if r.type == RewardType.PERCENTAGE_DISCOUNT:
            return f"{format_qty(r.value)}% off"
        if r.type == RewardType.FIXED_DISCOUNT:
            return f"{format_money(r.value, r.currency)} off"
        if r.type == RewardType.FREE_PRODUCT:
            return f"Free {r.free_product.name}" if r.free_product_id else "Free product"
        name = r.grant_feature.name if r.grant_feature_id else "units"  # the last type: a feature grant
        return f"+{format_qty(r.value)} {name}"

    @property
    def duration(self) -> str:
        r = self.reward
        if r.duration == RewardDuration.ONE_OFF:
            return "once"
        if r.duration == RewardDuration.FOREVER:
            return "forever"
        months = r.duration_months or 0
        return f"{months} month{'s' if months != 1 else ''}"


def customer_rewards(customer: Customer, *, now: datetime | None = None) -> list[RewardRow]:
    """Coupons the customer has (not removed), newest first; expired ones stay visible, marked."""
    now = now or timezone.now()
    applied = (
        CustomerReward.objects.filter(customer=customer, removed_at__isnull=True)
        .select_related("reward__free_product", "reward__grant_feature", "applied_by")
        .order_by("-applied_at", "-id")
    )
    return [RewardRow(applied=a, now=now) for a in applied]


def active_discounts(customer: Customer, now: datetime | None = None) -> list[Reward]:
    """The customer's discount rewards in force, newest first."""
    now = now or timezone.now()
    applied = (
        CustomerReward.objects.filter(
            customer=customer, removed_at__isnull=True, reward__type__in=DISCOUNT_REWARD_TYPES
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("reward")
        .order_by("-applied_at", "-id")
    )
    return [cr.reward for cr in applied]


# --- entities --------------------------------------------------------------------------------------

ENTITIES_SHOWN = 50


@dataclass
class EntityList:
    """A customer's entities as the page's card shows them: the newest `ENTITIES_SHOWN`, and how many there are."""

    items: list
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.items)


def customer_entities(customer: Customer, *, limit: int = ENTITIES_SHOWN) -> EntityList:
    """The customer's entities (not deleted), newest first, in two queries whatever their number."""
    alive = Entity.objects.alive().filter(customer=customer)
    items = list(alive.select_related("feature").order_by("-created_at", "-id")[:limit])
    total = len(items) if len(items) < limit else alive.count()
    return EntityList(items=items, total=total)


def entity_features() -> QuerySet[Feature]:
    """The features that may count a customer's entities: not consumable (continuous use, or on/off), not archived."""
    return (
        Feature.objects.filter(archived=False)
        .exclude(type=FeatureType.CREDIT_SYSTEM)
        .exclude(usage_type=UsageType.SINGLE_USE)
        .order_by("name")
    )


@dataclass
class ReferralCodeRow:
    """One code the customer shares, with the redemptions of it (newest first) for the page's Referrals card."""

    code: str
    program_id: str
    reward_name: str
    received_by: str
    redemptions: list[dict]


def customer_referrals(customer: Customer) -> list[ReferralCodeRow]:
    """The customer's referral codes and who redeemed them, in one query (a left join: a code nobody redeemed
    yet comes back once, with empty redemption columns)."""
    rows = (
        ReferralCode.objects.filter(customer=customer)
        .order_by("created_at", "id", "-redemptions__created_at", "-redemptions__id")
        .values(
            "id",
            "code",
            "program__program_id",
            "program__reward__name",
            "program__received_by",
            "redemptions__redeemer__customer_id",
            "redemptions__created_at",
            "redemptions__triggered",
            "redemptions__referrer_applied",
            "redemptions__redeemer_applied",
        )
    )
    codes: dict[int, ReferralCodeRow] = {}
    for row in rows:
        entry = codes.setdefault(
            row["id"],
            ReferralCodeRow(
                row["code"], row["program__program_id"], row["program__reward__name"], row["program__received_by"], []
            ),
        )
        if row["redemptions__redeemer__customer_id"] is not None:
            entry.redemptions.append(
                {
                    "redeemer": row["redemptions__redeemer__customer_id"],
                    "at": row["redemptions__created_at"],
                    "triggered": row["redemptions__triggered"],
                    "referrer_rewarded": row["redemptions__referrer_applied"],
                    "redeemer_rewarded": row["redemptions__redeemer_applied"],
                }
            )
    return list(codes.values())
