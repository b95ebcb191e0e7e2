"""Stripe's state applied here: the one code path for webhook events and for `sync_stripe`.

Nothing in this module calls Stripe (that is `stripe_gateway`). Each Stripe object is upserted by
its Stripe id in a transaction of its own, audited with the system as actor, and guarded by
`stripe_updated_at`: the `created` time of the newest event applied to the row, so an event that
arrives late never overwrites newer state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from autumn_admin.audit import SYSTEM, audit_record
from autumn_admin.errors import ServiceError
from billing import stripe_gateway
from billing.models import (
    LIVE_PRODUCT_STATUSES,
    CustomerProduct,
    CustomerProductStatus,
    Invoice,
    InvoiceStatus,
    Price,
    Product,
    StripeEvent,
)
from billing.services import customer_product_update, product_attach
from customers.models import Customer
from customers.services import customer_stripe_link

# When two events carry the same second, the later stage of an invoice's life wins.
INVOICE_STAGE = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}
SUBSCRIPTION_STATUS = {
    "active": CustomerProductStatus.ACTIVE,
    "trialing": CustomerProductStatus.TRIALING,
    "past_due": CustomerProductStatus.PAST_DUE,
    "unpaid": CustomerProductStatus.PAST_DUE,
    "incomplete": CustomerProductStatus.PAST_DUE,
    "paused": CustomerProductStatus.PAST_DUE,
    "canceled": CustomerProductStatus.EXPIRED,
    "incomplete_expired": CustomerProductStatus.EXPIRED,
}
# A subscription we don't know yet puts the customer on its product only once it is paid for (or trialing).
ATTACH_ON = ("active", "trialing", "past_due")
# The backfill stamps what it read slightly in the past, so a clock running ahead of Stripe's can
# never make it hide a real event that happened just after.
BACKFILL_CLOCK_MARGIN = 60


def _when(value) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, tz=UTC)
    return None


def _id(ref) -> str | None:
    ref = ref.get("id") if isinstance(ref, dict) else ref
    return ref if isinstance(ref, str) and ref else None


def _customer_for(ref) -> Customer | None:
    stripe_id = _id(ref)
    if stripe_id is None:
        return None
    return Customer.objects.filter(stripe_id=stripe_id).order_by(
        F("deleted_at").asc(nulls_first=True), "-id").first()


def _products_of(customer: Customer):
    return Product.objects.filter(Q(custom_for__isnull=True) | Q(custom_for=customer))


def _meta(obj, key: str = "product_id"):
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and value else None


# --- invoices -----------------------------------------------------------------------------------

def _invoice_product_ids(obj: dict, customer: Customer) -> list[str]:
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") or obj.get("subscription_details") or {}
    named = [_meta(obj.get("metadata")), _meta(details.get("metadata"))]
    price_ids = []
    for line in (obj.get("lines") or {}).get("data") or []:
        named.append(_meta(line.get("metadata")))
        price_ids.append(_id(line.get("price")))
        price_ids.append(_id(((line.get("pricing") or {}).get("price_details") or {}).get("price")))
    named = [n for n in named if n]
    known = set(_products_of(customer).filter(product_id__in=named).values_list("product_id", flat=True))
    found = [n for n in named if n in known]
    price_ids = [p for p in price_ids if p]
    if price_ids:
        found += Price.objects.filter(stripe_price_id__in=price_ids).values_list("product__product_id", flat=True)
    subscription = _id(details.get("subscription")) or _id(obj.get("subscription"))
    if subscription:
        found += CustomerProduct.objects.filter(stripe_subscription_id=subscription).values_list(
            "product__product_id", flat=True)
    return list(dict.fromkeys(found))


def apply_invoice(obj: dict, *, created: int, reason: str) -> str:
    """Create or update the Invoice row of a Stripe invoice. Returns what happened."""
    customer = _customer_for(obj.get("customer"))
    stripe_id = _id(obj.get("id"))
    if customer is None or stripe_id is None:
        return "unknown customer"
    status = obj.get("status") or InvoiceStatus.DRAFT
    if status not in InvoiceStatus.values:
        return "ignored"
    fields = {
        "status": status,
        "total": int(obj.get("total") or 0),
        "amount_paid": max(0, int(obj.get("amount_paid") or 0)),
        "currency": str(obj.get("currency") or "usd").lower()[:3],
        "hosted_invoice_url": obj.get("hosted_invoice_url") or "",
        "invoice_pdf": obj.get("invoice_pdf") or "",
        "product_ids": _invoice_product_ids(obj, customer),
    }
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(stripe_id=stripe_id).first()
        if invoice is None:
            try:
                with transaction.atomic():
                    invoice = Invoice.objects.create(
                        customer=customer, stripe_id=stripe_id, stripe_updated_at=created,
                        created_at=_when(obj.get("created")) or datetime.now(tz=UTC), **fields)
            except IntegrityError:  # created meanwhile by a concurrent delivery: update it instead
                invoice = Invoice.objects.select_for_update().get(stripe_id=stripe_id)
            else:
                audit_record(actor=SYSTEM, action="invoice.create", customer=customer, target_type="invoice",
                             target_id=stripe_id, after=fields, reason=reason)
                return "created"
        last = invoice.stripe_updated_at
        if last is not None and (created < last or (
                created == last and INVOICE_STAGE[status] < INVOICE_STAGE.get(invoice.status, 0))):
            return "stale"
        if not fields["product_ids"]:
            del fields["product_ids"]  # a snapshot that names no product doesn't forget the ones we knew
        changed = {k: v for k, v in fields.items() if getattr(invoice, k) != v}
        before = {k: getattr(invoice, k) for k in changed}
        for key, value in changed.items():
            setattr(invoice, key, value)
        invoice.stripe_updated_at = created
        invoice.save(update_fields=[*changed, "stripe_updated_at"])
        if not changed:
            return "unchanged"
        audit_record(actor=SYSTEM, action="invoice.update", customer=invoice.customer, target_type="invoice",
                     target_id=stripe_id, before=before, after=changed, reason=reason)
        return "updated"


# --- subscriptions ------------------------------------------------------------------------------

def _subscription_dates(obj: dict) -> dict:
    # Since API version 2025-03-31 the periods live on the subscription items.
    items = (obj.get("items") or {}).get("data") or []
    starts = [i["current_period_start"] for i in items if isinstance(i.get("current_period_start"), int)]
    ends = [i["current_period_end"] for i in items if isinstance(i.get("current_period_end"), int)]
    return {
        "current_period_start": _when(obj.get("current_period_start") or (min(starts) if starts else None)),
        "current_period_end": _when(obj.get("current_period_end") or (max(ends) if ends else None)),
        "trial_ends_at": _when(obj.get("trial_end")),
        "canceled_at": _when(obj.get("canceled_at")),
        "ended_at": _when(obj.get("ended_at")),
    }


def _product_for_subscription(obj: dict, customer: Customer) -> Product | None:
    metadata = obj.get("metadata") or {}
    product_id = _meta(metadata)
    if product_id:
        products = _products_of(customer).filter(product_id=product_id)
        version = _meta(metadata, "product_version")
        if version and version.isdigit():
            products = products.filter(version=int(version))
        product = products.order_by(F("custom_for").asc(nulls_last=True), "archived", "-version").first()
        if product is not None:
            return product
    price_ids = [_id(item.get("price") or {}) for item in (obj.get("items") or {}).get("data") or []]
    # Custom products copy their base's prices, Stripe price ids included: only this customer's products
    # count, its own custom one first, as for a product named in the metadata.
    price = (Price.objects.filter(stripe_price_id__in=[p for p in price_ids if p], product__in=_products_of(customer))
             .select_related("product")
             .order_by(F("product__custom_for").asc(nulls_last=True), "product__archived", "-product__version", "id")
             .first())
    return price.product if price else None


def _link_or_attach(obj: dict, customer: Customer, status: str, reason: str) -> CustomerProduct | str:
    """The customer product of a subscription we haven't seen: the live one of its product not yet
    linked to Stripe, or a new one once Stripe says it is paid for."""
    product = _product_for_subscription(obj, customer)
    if product is None:
        return "unknown product"
    cp = CustomerProduct.objects.select_for_update().filter(
        customer=customer, product=product, status__in=LIVE_PRODUCT_STATUSES, stripe_subscription_id="").first()
    if cp is not None:
        cp.stripe_subscription_id = obj["id"]
        cp.save(update_fields=["stripe_subscription_id"])
        audit_record(actor=SYSTEM, action="product.stripe_link", customer=customer, target_type="product",
                     target_id=product.product_id, after={"stripe_subscription_id": obj["id"]}, reason=reason)
        return cp
    if obj.get("status") not in ATTACH_ON:
        return "ignored"
    try:
        with transaction.atomic():
            return product_attach(customer=customer, product=product, actor=SYSTEM, status=status,
                                  stripe_subscription_id=obj["id"],
                                  trial_ends_at=_when(obj.get("trial_end")), reason=reason)
    except ServiceError as exc:
        # A concurrent delivery of the same subscription may have attached it just now.
        cp = CustomerProduct.objects.select_for_update().filter(stripe_subscription_id=obj["id"]).first()
        return cp if cp is not None else f"not attached: {exc.message}"


def apply_subscription(obj: dict, *, created: int, reason: str) -> str:
    """Bring the customer product of a Stripe subscription up to date. Returns what happened."""
    customer = _customer_for(obj.get("customer"))
    sub_id = _id(obj.get("id"))
    if customer is None or sub_id is None:
        return "unknown customer"
    status = SUBSCRIPTION_STATUS.get(obj.get("status"))
    if status is None:
        return "ignored"
    with transaction.atomic():
        cp = CustomerProduct.objects.select_for_update().filter(stripe_subscription_id=sub_id).first()
        if cp is None:
            cp = _link_or_attach(obj, customer, status, reason)
            if isinstance(cp, str):
                return cp
        last = cp.stripe_updated_at
        if last is not None and created < last:
            return "stale"
        if cp.status == CustomerProductStatus.EXPIRED and status != CustomerProductStatus.EXPIRED:
            return "ended"  # an ended subscription never comes back in Stripe; neither does its product here
        dates = _subscription_dates(obj)
        if status != CustomerProductStatus.EXPIRED:
            dates.pop("ended_at")
        customer_product_update(customer_product=cp, actor=SYSTEM, reason=reason, status=status, **dates)
        CustomerProduct.objects.filter(pk=cp.pk).update(stripe_updated_at=created)
        return "applied"


# --- customers ----------------------------------------------------------------------------------

def apply_customer_deleted(obj: dict, *, created: int, reason: str) -> str:
    stripe_id = _id(obj.get("id"))
    customers = list(Customer.objects.filter(stripe_id=stripe_id)) if stripe_id else []
    for customer in customers:
        customer_stripe_link(customer=customer, stripe_id="", expected=stripe_id, actor=SYSTEM, reason=reason)
    return "unlinked" if customers else "unknown customer"


HANDLERS = {
    **{f"invoice.{name}": apply_invoice for name in (
        "created", "finalized", "updated", "paid", "payment_failed", "voided", "marked_uncollectible")},
    **{f"customer.subscription.{name}": apply_subscription for name in ("created", "updated", "deleted")},
    "customer.deleted": apply_customer_deleted,
}


def process_event(event: dict) -> str:
    """Apply a verified Stripe event once: its id is stored with what it changed, in one transaction,
    so a replay finds it and does nothing. Returns what happened."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event["id"], type=event["type"][:100], created=event["created"])
        except IntegrityError:
            return "duplicate"
        handler = HANDLERS.get(event["type"])
        if handler is None:
            return "ignored"
        return handler(event["data"]["object"], created=event["created"],
                       reason=f"Stripe event {event['id']} ({event['type']})")


# --- backfill -----------------------------------------------------------------------------------

@dataclass
class BackfillResult:
    invoices: dict[str, int] = field(default_factory=dict)
    subscriptions: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        def part(name, counts):
            total = sum(counts.values())
            detail = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()) if what != "unchanged")
            return f"{total} {name}" + (f" ({detail})" if detail else "")
        return f"{part('invoices', self.invoices)}, {part('subscriptions', self.subscriptions)}"


def backfill_customer(customer: Customer) -> BackfillResult:
    """Read the customer's invoices and subscriptions from Stripe and apply them. Safe to repeat:
    rows are upserted by Stripe id. Raises StripeError when Stripe fails (what was applied stays)."""
    result = BackfillResult()
    read_at = int(time.time()) - BACKFILL_CLOCK_MARGIN
    reason = "Read from Stripe by sync_stripe"
    for obj in stripe_gateway.invoices_of(customer.stripe_id):
        outcome = apply_invoice(obj, created=read_at, reason=reason)
        result.invoices[outcome] = result.invoices.get(outcome, 0) + 1
    for obj in stripe_gateway.subscriptions_of(customer.stripe_id):
        outcome = apply_subscription(obj, created=read_at, reason=reason)
        result.subscriptions[outcome] = result.subscriptions.get(outcome, 0) + 1
    return result
