"""Stripe's state applied here: the one code path for webhook events (`process_event`, which records
each event's outcome) and for `sync_stripe`'s backfill (billing/stripe_io/backfill.py).

Nothing in this module calls Stripe. Each Stripe object is upserted by its Stripe id in a
transaction of its own, audited with the system as actor, and guarded by `stripe_updated_at`: the
`created` time of the newest event applied to the row, so an event that arrives late never
overwrites newer state.

Every object is applied for one environment (`env`): it is matched only with that environment's
customers and their rows, never with the other's. Its fields are read through the checked readers of
billing/stripe_io/fields.py: a field of the wrong type raises Malformed before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Q

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
from billing.services.products import lock_customer_plans, product_attach
from billing.services.subscriptions import customer_product_update
from billing.stripe_io.config import MODE, WEBHOOK_SETTING
from billing.stripe_io.fields import (
    Malformed,
    as_time,
    read_dict,
    read_dicts,
    read_int,
    read_meta,
    read_ref,
    read_str,
    read_time,
    read_url,
)
from customers.audit import SYSTEM, AuditAction, audit_record
from customers.errors import ServiceError
from customers.models import Customer, Env
from customers.services.customers import customer_stripe_link

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


def _customer_for(stripe_id: str | None, env: str) -> Customer | None:
    """The customer of `env` linked to a Stripe customer: never one of the other environment."""
    if stripe_id is None:
        return None
    return (
        Customer.objects.filter(env=env, stripe_id=stripe_id)
        .order_by(F("deleted_at").asc(nulls_first=True), "-id")
        .first()
    )


def _of_env(env: str):
    # A subquery, not a join: `select_for_update` then locks the rows asked for and no customer's.
    return Customer.objects.filter(env=env).values("pk")


def _products_of(customer: Customer):
    return Product.objects.filter(Q(custom_for__isnull=True) | Q(custom_for=customer))


def _other_env(kind: str, stripe_id: str) -> str:
    return f"ignored: {kind} {stripe_id} belongs to a customer of the other environment"


# --- invoices -----------------------------------------------------------------------------------


@dataclass
class _InvoiceRefs:
    """What names an invoice's products: product ids in metadata, Stripe price ids, its subscription."""

    named: list[str]
    price_ids: list[str]
    subscription: str | None


def _invoice_refs(obj: dict) -> _InvoiceRefs:
    # Every field is read (and so checked) even where an earlier one already answers.
    details, older = read_dict(read_dict(obj, "parent"), "subscription_details"), read_dict(obj, "subscription_details")
    subscription, older_subscription = read_ref(details or older, "subscription"), read_ref(obj, "subscription")
    details = details or older
    named = [read_meta(read_dict(obj, "metadata")), read_meta(read_dict(details, "metadata"))]
    price_ids = []
    for line in read_dicts(read_dict(obj, "lines"), "data"):
        named.append(read_meta(read_dict(line, "metadata")))
        price_ids.append(read_ref(line, "price"))
        price_ids.append(read_ref(read_dict(read_dict(line, "pricing"), "price_details"), "price"))
    return _InvoiceRefs(
        named=[n for n in named if n],
        price_ids=[p for p in price_ids if p],
        subscription=subscription or older_subscription,
    )


def _invoice_product_ids(refs: _InvoiceRefs, customer: Customer) -> list[str]:
    known = set(_products_of(customer).filter(product_id__in=refs.named).values_list("product_id", flat=True))
    found = [n for n in refs.named if n in known]
    if refs.price_ids:
        found += Price.objects.filter(stripe_price_id__in=refs.price_ids).values_list("product__product_id", flat=True)
    if refs.subscription:
        found += CustomerProduct.objects.filter(
            stripe_subscription_id=refs.subscription, customer__env=customer.env
        ).values_list("product__product_id", flat=True)
    return list(dict.fromkeys(found))


def _invoice_fields(obj: dict) -> dict:
    """The Invoice columns a Stripe invoice sets (all but its products)."""
    status = read_str(obj, "status") or InvoiceStatus.DRAFT
    total, amount_paid = read_int(obj, "total"), read_int(obj, "amount_paid")
    if total is None:  # every Stripe invoice has one: without it, what is owed is unknown, not 0
        raise Malformed("total is missing")
    currency = read_str(obj, "currency")
    return {
        "status": status,
        "total": total,
        "amount_paid": max(0, amount_paid or 0),
        "currency": (currency or "usd").lower()[:3],
        "hosted_invoice_url": read_url(obj, "hosted_invoice_url"),
        "invoice_pdf": read_url(obj, "invoice_pdf"),
    }


def apply_invoice(obj: dict, *, env: str, created: int, reason: str) -> str:
    """Create or update the Invoice row of a Stripe invoice of `env`. Returns what happened."""
    stripe_id, customer_ref = read_ref(obj, "id"), read_ref(obj, "customer")
    fields = _invoice_fields(obj)
    created_at = read_time(obj, "created")
    refs = _invoice_refs(obj)
    customer = _customer_for(customer_ref, env)
    if customer is None or stripe_id is None:
        return "unknown customer"
    if fields["status"] not in InvoiceStatus.values:
        return "ignored"
    fields["product_ids"] = _invoice_product_ids(refs, customer)
    invoices = Invoice.objects.select_for_update().filter(stripe_id=stripe_id, customer__in=_of_env(env))
    with transaction.atomic():
        invoice = invoices.first()
        if invoice is None:
            try:
                with transaction.atomic():
                    invoice = Invoice.objects.create(
                        customer=customer,
                        stripe_id=stripe_id,
                        stripe_updated_at=created,
                        created_at=created_at or datetime.now(tz=UTC),
                        **fields,
                    )
            except IntegrityError:  # created meanwhile by a concurrent delivery: update it instead
                invoice = invoices.first()
                if invoice is None:
                    return _other_env("invoice", stripe_id)
            else:
                _audit_invoice(invoice, AuditAction.INVOICE_CREATE, after=fields, reason=reason)
                return "created"
        return _invoice_update(invoice, fields, created=created, reason=reason)


def _invoice_update(invoice: Invoice, fields: dict, *, created: int, reason: str) -> str:
    """Bring the locked Invoice row up to a snapshot created at `created`, unless it is older than the row's."""
    last = invoice.stripe_updated_at
    if last is not None and (
        created < last or (created == last and INVOICE_STAGE[fields["status"]] < INVOICE_STAGE.get(invoice.status, 0))
    ):
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
    _audit_invoice(invoice, AuditAction.INVOICE_UPDATE, before=before, after=changed, reason=reason)
    return "updated"


def _audit_invoice(
    invoice: Invoice, action: AuditAction, *, reason: str, after: dict, before: dict | None = None
) -> None:
    audit_record(
        actor=SYSTEM,
        action=action,
        customer=invoice.customer,
        target_type="invoice",
        target_id=invoice.stripe_id,
        before=before,
        after=after,
        reason=reason,
    )


# --- subscriptions ------------------------------------------------------------------------------


@dataclass
class _Subscription:
    """The fields of a Stripe subscription this app reads, checked."""

    id: str | None
    customer: str | None
    status: str | None
    product_id: str | None
    product_version: int | None
    price_ids: list[str]
    dates: dict


def _subscription(obj: dict) -> _Subscription:
    items = read_dicts(read_dict(obj, "items"), "data")
    metadata = read_dict(obj, "metadata")
    version = read_meta(metadata, "product_version")
    # Since API version 2025-03-31 the periods live on the subscription items.
    starts = [s for i in items if (s := read_int(i, "current_period_start")) is not None]
    ends = [e for i in items if (e := read_int(i, "current_period_end")) is not None]
    return _Subscription(
        id=read_ref(obj, "id"),
        customer=read_ref(obj, "customer"),
        status=read_str(obj, "status"),
        product_id=read_meta(metadata),
        product_version=int(version)
        if version and version.isascii() and version.isdigit() and len(version) < 10
        else None,
        price_ids=[p for i in items if (p := read_ref(i, "price"))],
        dates={
            "current_period_start": as_time(
                read_int(obj, "current_period_start") or (min(starts) if starts else None), "current_period_start"
            ),
            "current_period_end": as_time(
                read_int(obj, "current_period_end") or (max(ends) if ends else None), "current_period_end"
            ),
            "trial_ends_at": read_time(obj, "trial_end"),
            "canceled_at": read_time(obj, "canceled_at"),
            "ended_at": read_time(obj, "ended_at"),
        },
    )


def _product_for_subscription(sub: _Subscription, customer: Customer) -> Product | None:
    if sub.product_id:
        products = _products_of(customer).filter(product_id=sub.product_id)
        if sub.product_version is not None:
            products = products.filter(version=sub.product_version)
        product = products.order_by(F("custom_for").asc(nulls_last=True), "archived", "-version").first()
        if product is not None:
            return product
    # Custom products copy their base's prices, Stripe price ids included: only this customer's products
    # count, its own custom one first, as for a product named in the metadata.
    price = (
        Price.objects.filter(stripe_price_id__in=sub.price_ids, product__in=_products_of(customer))
        .select_related("product")
        .order_by(F("product__custom_for").asc(nulls_last=True), "product__archived", "-product__version", "id")
        .first()
    )
    return price.product if price else None


def _subscribed(sub_id: str, env: str) -> CustomerProduct | None:
    """The customer product of `env` linked to a Stripe subscription, locked."""
    return (
        CustomerProduct.objects.select_for_update()
        .filter(stripe_subscription_id=sub_id, customer__in=_of_env(env))
        .first()
    )


def _link_or_attach(sub: _Subscription, customer: Customer, status: str, reason: str) -> CustomerProduct | str:
    """The customer product of a subscription we haven't seen: the live one of its product not yet
    linked to Stripe, or a new one once Stripe says it is paid for."""
    product = _product_for_subscription(sub, customer)
    if product is None:
        return "unknown product"
    cp = (
        CustomerProduct.objects.select_for_update()
        .filter(customer=customer, product=product, status__in=LIVE_PRODUCT_STATUSES, stripe_subscription_id="")
        .first()
    )
    if cp is None:
        return _attach(sub, customer, product, status, reason) if sub.status in ATTACH_ON else "ignored"
    cp.stripe_subscription_id = sub.id
    cp.save(update_fields=["stripe_subscription_id"])
    audit_record(
        actor=SYSTEM,
        action=AuditAction.PRODUCT_STRIPE_LINK,
        customer=customer,
        target_type="product",
        target_id=product.product_id,
        after={"stripe_subscription_id": sub.id},
        reason=reason,
    )
    return cp


def _attach(
    sub: _Subscription, customer: Customer, product: Product, status: str, reason: str
) -> CustomerProduct | str:
    """The customer put on the subscription's product, linked to the subscription."""
    try:
        with transaction.atomic():
            return product_attach(
                customer=customer,
                product=product,
                actor=SYSTEM,
                status=status,
                stripe_subscription_id=sub.id,
                trial_ends_at=sub.dates["trial_ends_at"],
                reason=reason,
            )
    except ServiceError as exc:
        # A concurrent delivery of the same subscription may have attached it just now.
        cp = _subscribed(sub.id, customer.env)
        return cp if cp is not None else f"not attached: {exc.message}"


def apply_subscription(obj: dict, *, env: str, created: int, reason: str) -> str:
    """Bring the customer product of a Stripe subscription of `env` up to date. Returns what happened."""
    sub = _subscription(obj)
    customer = _customer_for(sub.customer, env)
    if customer is None or sub.id is None:
        return "unknown customer"
    status = SUBSCRIPTION_STATUS.get(sub.status)
    if status is None:
        return "ignored"
    with transaction.atomic():
        # The plan-change lock of the customer holding the subscription (or of the one it is for) comes first,
        # as in every plan change: a webhook racing an attach or a cancel waits, never deadlocks.
        holder = CustomerProduct.objects.filter(stripe_subscription_id=sub.id, customer__in=_of_env(env))
        lock_customer_plans(holder.values_list("customer_id", flat=True).first() or customer.pk)
        cp = _subscribed(sub.id, env)
        if cp is None:
            if CustomerProduct.objects.filter(stripe_subscription_id=sub.id).exists():
                return _other_env("subscription", sub.id)
            cp = _link_or_attach(sub, customer, status, reason)
            if isinstance(cp, str):
                return cp
        last = cp.stripe_updated_at
        if last is not None and created < last:
            return "stale"
        if cp.status == CustomerProductStatus.EXPIRED and status != CustomerProductStatus.EXPIRED:
            return "ended"  # an ended subscription never comes back in Stripe; neither does its product here
        dates = dict(sub.dates)
        if status != CustomerProductStatus.EXPIRED:
            dates.pop("ended_at")
        customer_product_update(customer_product=cp, actor=SYSTEM, reason=reason, status=status, **dates)
        CustomerProduct.objects.filter(pk=cp.pk).update(stripe_updated_at=created)
        return "applied"


# --- customers ----------------------------------------------------------------------------------


def apply_customer_deleted(obj: dict, *, env: str, created: int, reason: str) -> str:
    stripe_id = read_ref(obj, "id")
    customers = list(Customer.objects.filter(env=env, stripe_id=stripe_id)) if stripe_id else []
    for customer in customers:
        customer_stripe_link(customer=customer, stripe_id="", expected=stripe_id, actor=SYSTEM, reason=reason)
    return "unlinked" if customers else "unknown customer"


HANDLERS = {
    **{
        f"invoice.{name}": apply_invoice
        for name in ("created", "finalized", "updated", "paid", "payment_failed", "voided", "marked_uncollectible")
    },
    **{f"customer.subscription.{name}": apply_subscription for name in ("created", "updated", "deleted")},
    "customer.deleted": apply_customer_deleted,
}


def _apply(event: dict, signed_for: str) -> str:
    event_env = Env.LIVE if event["livemode"] else Env.SANDBOX
    if event_env != signed_for:
        # Signed with one environment's secret but of the other's mode: applied to neither.
        return (
            f"ignored: a {MODE[event_env]}-mode event signed with the {signed_for} signing secret "
            f"({WEBHOOK_SETTING[signed_for]}); {event_env} events count only when signed with "
            f"{WEBHOOK_SETTING[event_env]}"
        )
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return "ignored"
    try:
        with transaction.atomic():
            return handler(
                event["data"]["object"],
                env=signed_for,
                created=event["created"],
                reason=f"Stripe event {event['id']} ({event['type']})",
            )
    except Malformed as exc:
        return f"ignored: malformed {event['type']} ({exc})"


def process_event(event: dict, *, signed_for: str) -> str:
    """Apply a Stripe event that `webhooks.event_from_webhook` accepted, once, to the customers of
    `signed_for`, the environment whose signing secret verified it, and only if the event's
    `livemode` names the same environment. Its
    id is stored with what it did (`outcome`, "ignored: …" saying why for an event it does not apply),
    in one transaction, so a replay finds it and does nothing. Returns what happened."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = StripeEvent.objects.create(
                    event_id=event["id"], type=event["type"][:100], created=event["created"], env=signed_for
                )
        except IntegrityError:
            return "duplicate"
        outcome = _apply(event, signed_for)
        StripeEvent.objects.filter(pk=row.pk).update(outcome=outcome[:255])
        return outcome
