"""Everything the customer page shows, read in a constant number of queries: the whole page's
context, and the context of the sections that load alone (events, invoices)."""

from __future__ import annotations

import json
from datetime import datetime

from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from autumn_admin.dashboard.activity import Names, customer_activity, page_audit_entries
from autumn_admin.dashboard.customer_list import customer_status
from autumn_admin.dashboard.permissions import user_can
from billing import selectors as billing
from billing.invoice_preview import upcoming_invoice
from billing.models import CustomerProductStatus, Feature, FeatureType, Product
from billing.services.current import customer_bring_current, is_current
from billing.stripe_io.config import is_configured
from billing.usage_graph import history_start, usage_history
from customers.models import DETAIL_FIELDS, TEXT_FIELDS, Customer, Env
from customers.paging import Page


def detail_url(customer: Customer) -> str:
    """The page's address; its actions and fragments live under it."""
    return reverse("customers:detail", args=[customer.customer_id])


def stripe_dashboard_url(customer: Customer) -> str:
    if not customer.stripe_id:
        return ""
    test = "test/" if customer.env == Env.SANDBOX else ""
    return f"https://dashboard.stripe.com/{test}customers/{customer.stripe_id}"


def detail_fields(customer: Customer) -> list[tuple[str, str, str]]:
    """(field, label, value) of the editable text details, in the order the sidebar shows them."""
    return [(field, DETAIL_FIELDS[field], getattr(customer, field)) for field in TEXT_FIELDS]


def metadata_items(customer: Customer) -> list[tuple[str, str]]:
    """Metadata as key/value text: strings as they are, anything else as JSON."""
    items = []
    for key, value in sorted((customer.metadata or {}).items()):
        items.append((key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))
    return items


def _events(customer: Customer, params) -> dict:
    """The events section's page: `events_before` (a keyset cursor) and the `events_feature` filter."""
    event_feature = params.get("events_feature", "").strip()[:255]
    events = billing.events_page(customer, before=params.get("events_before") or None, feature_id=event_feature or None)
    return {"events": events, "event_feature": event_feature}


def _invoices_page(customer: Customer, params) -> Page:
    """The invoices section's page (`invoices_before`, a keyset cursor)."""
    return billing.invoices_page(customer, before=params.get("invoices_before") or None)


def _with_product_names(invoices: Page, names: dict[str, str]) -> Page:
    """Each invoice of the page with the names of the products it bills (`product_names`)."""
    for invoice in invoices.items:
        invoice.product_names = [names.get(p, p) for p in invoice.product_ids or []]
    return invoices


def _products(rows: list[billing.ProductRow]) -> dict:
    """The header's status badge and plans, and the Products section's live and ended rows."""
    live = [r.cp for r in rows if r.is_live]  # plans before add-ons
    return {
        "status": customer_status(live),
        "plans": [str(cp.product) for cp in live],
        "product_rows": [r for r in rows if r.cp.status != CustomerProductStatus.EXPIRED],
        "ended_product_rows": [r for r in rows if r.cp.status == CustomerProductStatus.EXPIRED],
    }


def _features(frows: list[billing.FeatureRow]) -> dict:
    """The Available Features section: its rows, by feature id too, and which kinds it has."""
    return {
        "feature_rows": frows,
        "feature_rows_by_id": {r.feature_id: r for r in frows},
        "has_boolean_features": any(r.is_boolean for r in frows),
        "has_metered_features": any(not r.is_boolean for r in frows),
    }


def customer_page_context(
    customer: Customer, *, request: HttpRequest | None = None, now: datetime | None = None
) -> dict:
    """Everything the customer page and each of its fragments need, in a constant number of queries.

    The customer is brought current first (due period ends and resets applied). Query parameters read from the request:
    `events_feature`, `events_before` and `invoices_before` (keyset cursors; a malformed one is a 400).

    Keys: customer, now, can (what the user may do), detail_url, status (key, label), plans,
    product_rows, ended_product_rows, feature_rows, feature_rows_by_id (feature id → row: render one
    `balance-row` with it as `fb`), has_metered_features, has_boolean_features, upcoming, invoices,
    events, event_features, event_feature, rewards, entities, referrals, activity, detail_fields, metadata_items,
    stripe_url, stripe_connected.
    """
    now = now or timezone.now()
    params = request.GET if request is not None else {}

    cps, balances = billing.customer_products(customer), billing.customer_balances(customer)
    if not is_current(products=cps, balances=balances, now=now):  # told by the rows at hand: no query when current
        customer_bring_current(customer=customer, now=now)  # period ends, then resets: none is shown undone
        cps, balances = billing.customer_products(customer), billing.customer_balances(customer)
    rows = billing.product_rows(cps)
    features = list({b.feature_id: b.feature for b in balances}.values())
    audit = page_audit_entries(customer, since=history_start(now))
    history = usage_history(customer, features=features, now=now, audit_entries=audit)
    frows = billing.feature_rows(balances, history, billing.credit_schemas(features))
    rewards = billing.customer_rewards(customer, now=now)
    names: Names = {
        "feature": {f.feature_id: f.name for f in features},
        "product": {cp.product.product_id: cp.product.name for cp in cps},
        "reward": {r.reward.reward_id: r.reward.name for r in rewards},
    }
    return {
        "customer": customer,
        "now": now,
        "can": user_can(request),
        "detail_url": detail_url(customer),
        **_products(rows),
        **_features(frows),
        "upcoming": upcoming_invoice(customer, cps=cps, balances=balances, rewards=rewards, now=now),
        "invoices": _with_product_names(_invoices_page(customer, params), names["product"]),
        **_events(customer, params),
        "event_features": sorted((f for f in features if f.is_metered), key=lambda f: f.name.lower()),
        "rewards": rewards,
        "entities": billing.customer_entities(customer),
        "referrals": billing.customer_referrals(customer),
        "activity": customer_activity(audit, names),
        "detail_fields": detail_fields(customer),
        "metadata_items": metadata_items(customer),
        "stripe_url": stripe_dashboard_url(customer),
        "stripe_connected": is_configured(customer.env),
    }


def _invoice_product_names(customer: Customer, invoices: Page) -> dict[str, str]:
    """Names of the products these invoices bill: the catalogue's, and this customer's custom ones."""
    ids = {p for invoice in invoices.items for p in invoice.product_ids or []}
    return dict(
        Product.objects.filter(product_id__in=ids)
        .filter(Q(custom_for__isnull=True) | Q(custom_for=customer))
        .values_list("product_id", "name")
    )


def section_context(customer: Customer, section: str, *, request: HttpRequest | None = None) -> dict:
    """What the `events` or `invoices` partial needs alone, for "Load more" and the feature filter,
    without building the whole page."""
    params = request.GET if request is not None else {}
    context = {"customer": customer, "detail_url": detail_url(customer)}
    if section == "events":
        context.update(_events(customer, params))
        context["event_features"] = list(
            Feature.objects.filter(balances__customer=customer)
            .exclude(type=FeatureType.BOOLEAN)
            .distinct()
            .order_by("name")
        )
    elif section == "invoices":
        invoices = _invoices_page(customer, params)
        context["invoices"] = _with_product_names(invoices, _invoice_product_names(customer, invoices))
    else:
        raise ValueError(f"Unknown section {section!r}")
    return context
