"""Stripe's state applied here: the one code path for webhook events and for `sync_stripe`.

Nothing in this module calls Stripe (that is `stripe_gateway`). Each Stripe object is upserted by
its Stripe id in a transaction of its own, audited with the system as actor, and guarded by
`stripe_updated_at`: the `created` time of the newest event applied to the row, so an event that
arrives late never overwrites newer state.

Every object is applied for one environment (`env`): it is matched only with that environment's
customers and their rows, never with the other's. Its fields are read through checked readers
(`_str`, `_int`, `_dict`, …): a field of the wrong type raises Malformed before anything is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Q

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
from billing.services.products import customer_product_update, product_attach
from billing.stripe_config import MODE, WEBHOOK_SETTING
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
# The backfill stamps what it read slightly in the past, so a clock running ahead of Stripe's can
# never make it hide a real event that happened just after.
BACKFILL_CLOCK_MARGIN = 60


MAX_BIG_INT = 2**63 - 1
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds


class Malformed(Exception):
    """A field of a Stripe object that is not what Stripe sends (a text for a number, a list for an
    object, …). Raised before anything is written: the event changes nothing and is recorded as ignored."""


# Readers of a Stripe object's fields: None when absent or null, Malformed when of another type.


def _str(obj: dict, key: str, *, max_length: int = 255) -> str | None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > max_length):
        raise Malformed(f"{key} is not a text of at most {max_length} characters")
    return value


def _int(obj: dict, key: str) -> int | None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_BIG_INT):
        raise Malformed(f"{key} is not a whole number")
    return value


def _dict(obj: dict, key: str) -> dict:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise Malformed(f"{key} is not an object")
    return value or {}


def _dicts(obj: dict, key: str) -> list[dict]:
    value = obj.get(key)
    if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        raise Malformed(f"{key} is not a list of objects")
    return value or []


def _ref(obj: dict, key: str) -> str | None:
    """A Stripe id, given as such or as the expanded object; "" counts as none."""
    value = obj.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise Malformed(f"{key} is not a Stripe id")
    return value or None


def _url(obj: dict, key: str) -> str:
    value = _str(obj, key, max_length=1000) or ""
    if value and not value.startswith("https://"):
        raise Malformed(f"{key} is not an https URL")
    return value


def _when(value: int | None, key: str) -> datetime | None:
    if value is None or value <= 0:
        return None
    if value > MAX_TIMESTAMP:
        raise Malformed(f"{key} is not a time")
    return datetime.fromtimestamp(value, tz=UTC)


def _time(obj: dict, key: str) -> datetime | None:
    return _when(_int(obj, key), key)


def _meta(metadata: dict, key: str = "product_id") -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) and value else None


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
    details, older = _dict(_dict(obj, "parent"), "subscription_details"), _dict(obj, "subscription_details")
    subscription, older_subscription = _ref(details or older, "subscription"), _ref(obj, "subscription")
    details = details or older
    named = [_meta(_dict(obj, "metadata")), _meta(_dict(details, "metadata"))]
    price_ids = []
    for line in _dicts(_dict(obj, "lines"), "data"):
        named.append(_meta(_dict(line, "metadata")))
        price_ids.append(_ref(line, "price"))
        price_ids.append(_ref(_dict(_dict(line, "pricing"), "price_details"), "price"))
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


def apply_invoice(obj: dict, *, env: str, created: int, reason: str) -> str:
    """Create or update the Invoice row of a Stripe invoice of `env`. Returns what happened."""
    stripe_id, customer_ref = _ref(obj, "id"), _ref(obj, "customer")
    status = _str(obj, "status") or InvoiceStatus.DRAFT
    total, amount_paid = _int(obj, "total"), _int(obj, "amount_paid")
    currency = _str(obj, "currency")
    fields = {
        "status": status,
        "total": total or 0,
        "amount_paid": max(0, amount_paid or 0),
        "currency": (currency or "usd").lower()[:3],
        "hosted_invoice_url": _url(obj, "hosted_invoice_url"),
        "invoice_pdf": _url(obj, "invoice_pdf"),
    }
    created_at = _time(obj, "created")
    refs = _invoice_refs(obj)
    customer = _customer_for(customer_ref, env)
    if customer is None or stripe_id is None:
        return "unknown customer"
    if status not in InvoiceStatus.values:
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
                audit_record(
                    actor=SYSTEM,
                    action=AuditAction.INVOICE_CREATE,
                    customer=customer,
                    target_type="invoice",
                    target_id=stripe_id,
                    after=fields,
                    reason=reason,
                )
                return "created"
        last = invoice.stripe_updated_at
        if last is not None and (
            created < last or (created == last and INVOICE_STAGE[status] < INVOICE_STAGE.get(invoice.status, 0))
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
        audit_record(
            actor=SYSTEM,
            action=AuditAction.INVOICE_UPDATE,
            customer=invoice.customer,
            target_type="invoice",
            target_id=stripe_id,
            before=before,
            after=changed,
            reason=reason,
        )
        return "updated"


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
    items = _dicts(_dict(obj, "items"), "data")
    metadata = _dict(obj, "metadata")
    version = _meta(metadata, "product_version")
    # Since API version 2025-03-31 the periods live on the subscription items.
    starts = [s for i in items if (s := _int(i, "current_period_start")) is not None]
    ends = [e for i in items if (e := _int(i, "current_period_end")) is not None]
    return _Subscription(
        id=_ref(obj, "id"),
        customer=_ref(obj, "customer"),
        status=_str(obj, "status"),
        product_id=_meta(metadata),
        product_version=int(version)
        if version and version.isascii() and version.isdigit() and len(version) < 10
        else None,
        price_ids=[p for i in items if (p := _ref(i, "price"))],
        dates={
            "current_period_start": _when(
                _int(obj, "current_period_start") or (min(starts) if starts else None), "current_period_start"
            ),
            "current_period_end": _when(
                _int(obj, "current_period_end") or (max(ends) if ends else None), "current_period_end"
            ),
            "trial_ends_at": _time(obj, "trial_end"),
            "canceled_at": _time(obj, "canceled_at"),
            "ended_at": _time(obj, "ended_at"),
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
    if cp is not None:
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
    if sub.status not in ATTACH_ON:
        return "ignored"
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
        cp = (
            CustomerProduct.objects.select_for_update()
            .filter(stripe_subscription_id=sub.id, customer__in=_of_env(customer.env))
            .first()
        )
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
        cp = (
            CustomerProduct.objects.select_for_update()
            .filter(stripe_subscription_id=sub.id, customer__in=_of_env(env))
            .first()
        )
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
    stripe_id = _ref(obj, "id")
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


def _event_env(event: dict) -> str | None:
    livemode = event.get("livemode")
    return None if not isinstance(livemode, bool) else Env.LIVE if livemode else Env.SANDBOX


def _apply(event: dict, signed_for: str) -> str:
    event_env = _event_env(event)
    if event_env is None:
        return "ignored: the event does not say which Stripe mode it is of (livemode)"
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
    """Apply a verified Stripe event once, to the customers of `signed_for`, the environment whose
    signing secret verified it, and only if the event's `livemode` names the same environment. Its
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


def _backfilled(apply, obj: dict, **kwargs) -> str:
    try:
        return apply(obj, **kwargs)
    except Malformed:
        return "malformed"


def backfill_customer(customer: Customer) -> BackfillResult:
    """Read the customer's invoices and subscriptions from its environment's Stripe mode and apply
    them. Safe to repeat: rows are upserted by Stripe id. Raises StripeError when Stripe fails, or is
    not connected for the customer's environment (what was applied stays)."""
    result = BackfillResult()
    read_at = int(time.time()) - BACKFILL_CLOCK_MARGIN
    reason = "Read from Stripe by sync_stripe"
    for obj in stripe_gateway.invoices_of(customer):
        outcome = _backfilled(apply_invoice, obj, env=customer.env, created=read_at, reason=reason)
        result.invoices[outcome] = result.invoices.get(outcome, 0) + 1
    for obj in stripe_gateway.subscriptions_of(customer):
        outcome = _backfilled(apply_subscription, obj, env=customer.env, created=read_at, reason=reason)
        result.subscriptions[outcome] = result.subscriptions.get(outcome, 0) + 1
    return result
