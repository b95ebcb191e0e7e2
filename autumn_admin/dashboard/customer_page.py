"""Reads of customers, scoped to an environment: the list with its filters, and everything the
customer page shows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from billing import selectors as billing
from billing.invoice_preview import upcoming_invoice
from billing.models import (
    LIVE_PRODUCT_STATUSES,
    CustomerProduct,
    CustomerProductStatus,
    Feature,
    FeatureType,
    InvoiceStatus,
    Product,
)
from billing.money import format_money
from billing.stripe_io.config import is_configured
from billing.usage_graph import HISTORY_MARKS_LIMIT, balance_marks_query, history_start, usage_history
from customers.audit import AuditAction
from customers.formatting import format_qty
from customers.models import CUSTOMER_ID_PATTERN, AuditEntry, Customer, Env

ACTIVITY_LIMIT = 12
CUSTOMER_ID_RE = re.compile(CUSTOMER_ID_PATTERN)


def get_customer_for(env: str, customer_id: str) -> Customer:
    """The live customer with this id in this environment, or a 404 (deleted and other-env ones too)."""
    # An id no customer can have (a NUL, say, which PostgreSQL refuses to compare) is looked up nowhere.
    valid = CUSTOMER_ID_RE.fullmatch(customer_id) is not None
    customer = Customer.objects.alive().filter(env=env, customer_id=customer_id).first() if valid else None
    if customer is None:
        raise Http404(f"No customer with the id “{customer_id}” in {Env(env).label.lower()}.")
    return customer


# --- the customers list -------------------------------------------------------------------------

STATUS_FILTERS = {
    "active": ("Active", CustomerProductStatus.ACTIVE),
    "trialing": ("Trialing", CustomerProductStatus.TRIALING),
    "past_due": ("Past due", CustomerProductStatus.PAST_DUE),
    "none": ("No product", None),
}
SORTS = {
    "-created": ("Newest first", ("-created_at", "-id")),
    "created": ("Oldest first", ("created_at", "id")),
    "name": ("Name A–Z", ("name", "customer_id")),
    "-name": ("Name Z–A", ("-name", "-customer_id")),
}
DEFAULT_SORT = "-created"


@dataclass
class ListFilters:
    q: str = ""
    product: str = ""
    status: str = ""
    sort: str = DEFAULT_SORT

    @classmethod
    def from_query(cls, params) -> ListFilters:
        """Unknown filter values are ignored rather than refused: the list still answers."""
        status = params.get("status", "")
        sort = params.get("sort", DEFAULT_SORT)
        return cls(
            q=params.get("q", "").strip()[:255],
            product=params.get("product", "").strip()[:255],
            status=status if status in STATUS_FILTERS else "",
            sort=sort if sort in SORTS else DEFAULT_SORT,
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.product or self.status)


def _live_products_of(customer_pk_ref) -> QuerySet[CustomerProduct]:
    return CustomerProduct.objects.filter(customer=customer_pk_ref, status__in=LIVE_PRODUCT_STATUSES)


def customer_search(env: str, filters: ListFilters) -> QuerySet[Customer]:
    """The alive customers of an environment matching the filters, sorted. Search is a
    case-insensitive substring of the id, name, email or fingerprint."""
    qs = Customer.objects.alive().filter(env=env)
    if "\x00" in filters.q or "\x00" in filters.product:
        return qs.none()  # no stored text has a NUL, and PostgreSQL refuses to search for one
    qs = qs.search(filters.q)
    if filters.product:
        qs = qs.filter(Exists(_live_products_of(OuterRef("pk")).filter(product__product_id=filters.product)))
    if filters.status:
        status = STATUS_FILTERS[filters.status][1]
        if status is None:
            qs = qs.filter(~Exists(_live_products_of(OuterRef("pk"))))
        else:
            qs = qs.filter(Exists(CustomerProduct.objects.filter(customer=OuterRef("pk"), status=status)))
    return qs.order_by(*SORTS[filters.sort][1])


def with_live_products(qs: QuerySet[Customer]) -> QuerySet[Customer]:
    """Attach each customer's live products as `live_products` (one query per page or chunk)."""
    live = CustomerProduct.objects.filter(status__in=LIVE_PRODUCT_STATUSES).select_related("product")
    return qs.prefetch_related(
        Prefetch("customer_products", queryset=live.order_by("started_at", "id"), to_attr="live_products")
    )


def product_choices() -> list[tuple[str, str]]:
    """(product id, name) of the catalogue's products, for the list's product filter."""
    seen: dict[str, str] = {}
    for product_id, name in (
        Product.objects.filter(custom_for__isnull=True)
        .order_by("name", "product_id", "-version")
        .values_list("product_id", "name")
    ):
        seen.setdefault(product_id, name)
    return sorted(seen.items(), key=lambda kv: kv[1].lower())


# --- the customer page --------------------------------------------------------------------------


def customer_status(live: list[CustomerProduct]) -> tuple[str, str]:
    """The one badge the header shows: past due wins, then active, then trialing."""
    statuses = {cp.status for cp in live}
    for status in (CustomerProductStatus.PAST_DUE, CustomerProductStatus.ACTIVE, CustomerProductStatus.TRIALING):
        if status in statuses:
            return status, CustomerProductStatus(status).label
    return "none", "No product"


def stripe_dashboard_url(customer: Customer) -> str:
    if not customer.stripe_id:
        return ""
    test = "test/" if customer.env == Env.SANDBOX else ""
    return f"https://dashboard.stripe.com/{test}customers/{customer.stripe_id}"


def detail_fields(customer: Customer) -> list[tuple[str, str, str]]:
    """(field, label, value) of the editable text details, in the order the sidebar shows them."""
    return [
        ("name", "Name", customer.name),
        ("email", "Email", customer.email),
        ("fingerprint", "Fingerprint", customer.fingerprint),
    ]


def metadata_items(customer: Customer) -> list[tuple[str, str]]:
    """Metadata as key/value text: strings as they are, anything else as JSON."""
    items = []
    for key, value in sorted((customer.metadata or {}).items()):
        items.append((key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))
    return items


@dataclass
class ActivityItem:
    entry: AuditEntry
    text: str

    @property
    def actor(self) -> str:
        return self.entry.actor_label

    @property
    def reason(self) -> str:
        return self.entry.reason


FIELD_LABELS = {
    "name": "name",
    "email": "email",
    "fingerprint": "fingerprint",
    "metadata": "metadata",
    "id": "ID",
    "send_email_receipts": "email receipts",
}


ADMIN_VERBS = {
    AuditAction.ADMIN_CREATE: "added",
    AuditAction.ADMIN_UPDATE: "changed",
    AuditAction.ADMIN_DELETE: "deleted",
}


def _status(value) -> str:
    return CustomerProductStatus(value).label.lower() if value in CustomerProductStatus.values else str(value)


def _invoice_status(value) -> str:
    return InvoiceStatus(value).label.lower() if value in InvoiceStatus.values else str(value)


def _activity_text(entry: AuditEntry, names: dict[str, dict[str, str]]) -> str:
    """What happened, as a sentence without its actor: "set Messages 800 → 1,240"."""
    before, after = entry.before or {}, entry.after or {}
    action = entry.action
    feature_ref = after.get("feature") or before.get("feature") or ""
    feature = names["feature"].get(feature_ref, feature_ref or "a balance")
    if action == AuditAction.BALANCE_SET:
        return f"set {feature} {format_qty(before.get('remaining'))} → {format_qty(after.get('remaining'))}"
    if action == AuditAction.BALANCE_ADD:
        return f"added to {feature}: {format_qty(before.get('remaining'))} → {format_qty(after.get('remaining'))}"
    if action == AuditAction.BALANCE_RESET:
        return f"reset {feature} to {format_qty(after.get('remaining'))}"
    if action == AuditAction.BALANCE_CREATE:
        return f"granted {format_qty(after.get('granted'))} {feature}"
    if action == AuditAction.PRODUCT_ATTACH:
        product = names["product"].get(entry.target_id, entry.target_id)
        replaced = [names["product"].get(p, p) for p in before.get("products", [])]
        return f"attached {product}" + (f" (replacing {', '.join(replaced)})" if replaced else "")
    if action == AuditAction.PRODUCT_CUSTOMIZE:
        product = names["product"].get(entry.target_id, entry.target_id)
        return f"made a custom {product} for this customer"
    if action in (AuditAction.REWARD_APPLY, AuditAction.REWARD_REMOVE):
        reward = names["reward"].get(entry.target_id, entry.target_id)
        return f"{'applied' if action == AuditAction.REWARD_APPLY else 'removed'} coupon {reward}"
    if action == AuditAction.PRODUCT_UPDATE:
        product = names["product"].get(entry.target_id, entry.target_id)
        if "status" in after:
            return f"changed {product} from {_status(before.get('status'))} to {_status(after['status'])}"
        return f"updated {product} ({', '.join(k.replace('_', ' ') for k in after)})"
    if action == AuditAction.PRODUCT_STRIPE_LINK:
        product = names["product"].get(entry.target_id, entry.target_id)
        return f"linked {product} to Stripe subscription {after.get('stripe_subscription_id', '')}".rstrip()
    if action in (AuditAction.INVOICE_CREATE, AuditAction.INVOICE_UPDATE):
        verb = "recorded" if action == AuditAction.INVOICE_CREATE else "updated"
        status = f" · {_invoice_status(after['status'])}" if "status" in after else ""
        total = f" · {format_money(after['total'], after.get('currency', 'usd'))}" if "total" in after else ""
        return f"{verb} invoice {entry.target_id}{status}{total}"
    if action == AuditAction.CUSTOMER_STRIPE_LINK:
        return f"linked to Stripe customer {after.get('stripe_id', '')}"
    if action == AuditAction.CUSTOMER_STRIPE_UNLINK:
        return f"unlinked from Stripe customer {before.get('stripe_id', '')}"
    if action == AuditAction.CUSTOMER_CREATE:
        return "created the customer"
    if action == AuditAction.CUSTOMER_UPDATE:
        changed = [FIELD_LABELS.get(k, k) for k in (after or before)]
        if list(after) == ["name"] or list(after) == ["email"]:
            key = list(after)[0]
            return f"changed {key} “{before.get(key) or '—'}” → “{after.get(key) or '—'}”"
        return f"changed {', '.join(changed) or 'details'}"
    if action == AuditAction.CUSTOMER_DELETE:
        return "deleted the customer"
    if action == AuditAction.CUSTOMER_RESTORE:
        return "restored the customer"
    if action in ADMIN_VERBS:
        fields = f" ({', '.join(k.replace('_', ' ') for k in after)})" if action == AuditAction.ADMIN_UPDATE else ""
        return f"{ADMIN_VERBS[action]} {entry.target_type.replace('_', ' ')}{fields} in Django admin"
    return action.replace(".", " ").replace("_", " ")


def page_audit_entries(customer: Customer, *, since: datetime, limit: int = ACTIVITY_LIMIT) -> list[AuditEntry]:
    """The page's audit trail in one query, newest first: the latest `limit` entries (Activity)
    and the balance resets and edits since `since` (the graphs' markers)."""
    latest = AuditEntry.objects.filter(customer=customer).order_by("-created_at", "-id").values("pk")[:limit]
    wanted = Q(pk__in=latest) | balance_marks_query(customer, since)
    return list(
        AuditEntry.objects.filter(customer=customer)
        .filter(wanted)
        .order_by("-created_at", "-id")[: limit + HISTORY_MARKS_LIMIT]
    )


def customer_activity(
    customer: Customer,
    names: dict[str, dict[str, str]],
    *,
    entries: list[AuditEntry] | None = None,
    limit: int = ACTIVITY_LIMIT,
) -> list[ActivityItem]:
    """The latest audit entries as sentences. `entries`, newest first, saves the query."""
    if entries is None:
        entries = AuditEntry.objects.filter(customer=customer).order_by("-created_at", "-id")[:limit]
    return [ActivityItem(entry=e, text=_activity_text(e, names)) for e in list(entries)[:limit]]


def user_can(request: HttpRequest | None) -> dict[str, bool]:
    """Which edit controls the person sees on the customer page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return dict.fromkeys(("adjust_balance", "change_customer", "apply_reward", "delete_customer"), False)
    return {
        "adjust_balance": user.has_perm("billing.adjust_balance"),
        "change_customer": user.has_perm("customers.change_customer"),
        "apply_reward": user.has_perm("billing.apply_reward"),
        "delete_customer": user.has_perm("customers.delete_customer"),
    }


def customer_page_context(
    customer: Customer, *, request: HttpRequest | None = None, now: datetime | None = None
) -> dict:
    """Everything the customer page and each of its fragments need, in a constant number of queries.

    Due balance resets are applied first. Query parameters read from the request:
    `events_feature`, `events_before` and `invoices_before` (keyset cursors; a malformed one is a 400).

    Keys: customer, now, can (edit permissions), detail_url, status (key, label), plans,
    product_rows, ended_product_rows, feature_rows, feature_rows_by_id (feature id → row: render one
    `balance-row` with it as `fb`), has_metered_features, has_boolean_features, upcoming, invoices,
    events, event_features, event_feature, rewards, activity, detail_fields, metadata_items,
    stripe_url, stripe_connected.
    """
    now = now or timezone.now()
    params = request.GET if request is not None else {}

    balances = billing.customer_balances(customer, now=now)  # applies due resets first
    cps = billing.customer_products(customer)
    rows = billing.product_rows(cps)
    live_rows = [r for r in rows if r.cp.status != CustomerProductStatus.EXPIRED]
    features = {b.feature_id: b.feature for b in balances}
    audit = page_audit_entries(customer, since=history_start(now))
    history = usage_history(customer, features=list(features.values()), now=now, audit_entries=audit)
    frows = billing.feature_rows(balances, history)
    rewards = billing.customer_rewards(customer, now=now)
    upcoming = upcoming_invoice(customer, cps=cps, balances=balances, rewards=rewards, now=now)

    event_feature = params.get("events_feature", "").strip()[:255]
    events = billing.events_page(customer, before=params.get("events_before") or None, feature_id=event_feature or None)
    invoices = billing.invoices_page(customer, before=params.get("invoices_before") or None)

    product_names = {cp.product.product_id: cp.product.name for cp in cps}
    names = {
        "feature": {f.feature_id: f.name for f in features.values()},
        "product": product_names,
        "reward": {r.reward.reward_id: r.reward.name for r in rewards},
    }
    for invoice in invoices.items:
        invoice.product_names = [product_names.get(p, p) for p in invoice.product_ids or []]
    event_features = sorted(
        {f.feature_id: f for f in features.values() if f.is_metered}.values(), key=lambda f: f.name.lower()
    )
    live = [r.cp for r in rows if r.is_live]  # plans before add-ons
    return {
        "customer": customer,
        "now": now,
        "can": user_can(request),
        "detail_url": f"/customers/{customer.customer_id}/",
        "status": customer_status(live),
        "plans": [str(cp.product) for cp in live],
        "product_rows": live_rows,
        "ended_product_rows": [r for r in rows if r.cp.status == CustomerProductStatus.EXPIRED],
        "feature_rows": frows,
        "feature_rows_by_id": {r.feature_id: r for r in frows},
        "has_boolean_features": any(r.is_boolean for r in frows),
        "has_metered_features": any(not r.is_boolean for r in frows),
        "upcoming": upcoming,
        "invoices": invoices,
        "events": events,
        "event_features": event_features,
        "event_feature": event_feature,
        "rewards": rewards,
        "activity": customer_activity(customer, names, entries=audit),
        "detail_fields": detail_fields(customer),
        "metadata_items": metadata_items(customer),
        "stripe_url": stripe_dashboard_url(customer),
        "stripe_connected": is_configured(customer.env),
    }


def section_context(customer: Customer, section: str, *, request: HttpRequest | None = None) -> dict:
    """What the `events` or `invoices` partial needs alone, for "Load more" and the feature filter,
    without building the whole page."""
    params = request.GET if request is not None else {}
    context = {"customer": customer, "detail_url": f"/customers/{customer.customer_id}/"}
    if section == "events":
        event_feature = params.get("events_feature", "").strip()[:255]
        context["events"] = billing.events_page(
            customer, before=params.get("events_before") or None, feature_id=event_feature or None
        )
        context["event_feature"] = event_feature
        context["event_features"] = list(
            Feature.objects.filter(balances__customer=customer)
            .exclude(type=FeatureType.BOOLEAN)
            .distinct()
            .order_by("name")
        )
    elif section == "invoices":
        invoices = billing.invoices_page(customer, before=params.get("invoices_before") or None)
        ids = {p for invoice in invoices.items for p in invoice.product_ids or []}
        names = dict(
            Product.objects.filter(product_id__in=ids)
            .filter(Q(custom_for__isnull=True) | Q(custom_for=customer))
            .values_list("product_id", "name")
        )
        for invoice in invoices.items:
            invoice.product_names = [names.get(p, p) for p in invoice.product_ids or []]
        context["invoices"] = invoices
    else:
        raise ValueError(f"Unknown section {section!r}")
    return context
