"""Stripe's state applied here: the one code path for webhook events (`process_event`, which records
each event's outcome) and for `sync_stripe`'s backfill (billing/stripe_inbound/backfill.py): Stripe's objects read
and checked here, applied through billing/services/stripe_state.py.

Nothing in this module calls Stripe. Each Stripe object is upserted by its Stripe id in a
transaction of its own, audited with the system as actor, and guarded by `stripe_updated_at`: the
`created` time of the newest event applied to the row, so an event that arrives late never
overwrites newer state.

Every object is applied for one environment (`env`): it is matched only with that environment's
customers and their rows, never with the other's. Its fields are read through the checked readers of
billing/stripe_inbound/fields.py: a field of the wrong type raises Malformed before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F

from billing.models import (
    CustomerProduct,
    CustomerProductStatus,
    InvoiceStatus,
    Price,
    StripeEvent,
)
from billing.services.stripe_state import StripeSubscription, invoice_from_stripe, products_of, subscription_from_stripe
from billing.stripe_inbound.fields import (
    Malformed,
    as_time,
    read_dict,
    read_dicts,
    read_int,
    read_invoice_detail,
    read_meta,
    read_ref,
    read_str,
    read_time,
    read_url,
)
from billing.stripe_io.config import MODE, WEBHOOK_SETTING
from customers.audit import SYSTEM
from customers.models import Customer, Env
from customers.services.customers import customer_stripe_link

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


def _customer_for(stripe_id: str | None, env: str) -> Customer | None:
    """The customer of `env` linked to a Stripe customer: never one of the other environment."""
    if stripe_id is None:
        return None
    return (
        Customer.objects.filter(env=env, stripe_id=stripe_id)
        .order_by(F("deleted_at").asc(nulls_first=True), "-id")
        .first()
    )


# --- invoices -------------------------------------------------------------------------------------


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
    known = set(products_of(customer).filter(product_id__in=refs.named).values_list("product_id", flat=True))
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
        **read_invoice_detail(obj),
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
    return invoice_from_stripe(
        customer=customer,
        stripe_id=stripe_id,
        fields=fields,
        env=env,
        created=created,
        created_at=created_at,
        reason=reason,
    )


# --- subscriptions --------------------------------------------------------------------------------


def _subscription(obj: dict) -> StripeSubscription:
    items = read_dicts(read_dict(obj, "items"), "data")
    metadata = read_dict(obj, "metadata")
    version = read_meta(metadata, "product_version")
    # Since API version 2025-03-31 the periods live on the subscription items.
    starts = [s for i in items if (s := read_int(i, "current_period_start")) is not None]
    ends = [e for i in items if (e := read_int(i, "current_period_end")) is not None]
    return StripeSubscription(
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


def apply_subscription(obj: dict, *, env: str, created: int, reason: str) -> str:
    """Bring the customer product of a Stripe subscription of `env` up to date. Returns what happened."""
    sub = _subscription(obj)
    customer = _customer_for(sub.customer, env)
    if customer is None or sub.id is None:
        return "unknown customer"
    status = SUBSCRIPTION_STATUS.get(sub.status)
    if status is None:
        return "ignored"
    return subscription_from_stripe(sub=sub, customer=customer, status=status, env=env, created=created, reason=reason)


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
