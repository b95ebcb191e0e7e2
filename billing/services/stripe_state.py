"""Stripe's state applied to ours: an invoice created or brought up to a newer snapshot, a subscription linked
to (or attaching) its customer product and moving it on. The inbound side (billing/stripe_inbound/sync.py: webhook
events and the backfill) reads and checks Stripe's objects, then calls these.

Each is guarded by `stripe_updated_at`, the `created` time of the newest event applied to the row, so an event
that arrives late never overwrites newer state; each change is audited with the system as actor, and each
object is matched only with the customers of its own environment.
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
    Price,
    Product,
)
from billing.services.products import lock_customer_plans, product_attach
from billing.services.subscriptions import customer_product_update
from customers.audit import SYSTEM, AuditAction, audit_record
from customers.errors import ServiceError
from customers.models import Customer

# When two events carry the same second, the later stage of an invoice's life wins.
INVOICE_STAGE = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}
# A subscription we don't know yet puts the customer on its product only once it is paid for (or trialing).
ATTACH_ON = ("active", "trialing", "past_due")


def of_env(env: str):
    # A subquery, not a join: `select_for_update` then locks the rows asked for and no customer's.
    return Customer.objects.filter(env=env).values("pk")


def products_of(customer: Customer):
    """The plans a customer can be on: the catalogue's and its own custom ones."""
    return Product.objects.filter(Q(custom_for__isnull=True) | Q(custom_for=customer))


def other_env(kind: str, stripe_id: str) -> str:
    return f"ignored: {kind} {stripe_id} belongs to a customer of the other environment"


# --- invoices -----------------------------------------------------------------------------------


def invoice_from_stripe(
    *, customer: Customer, stripe_id: str, fields: dict, env: str, created: int, created_at, reason: str
) -> str:
    """Create or update the Invoice row of a Stripe invoice of `env` (its columns in `fields`). Returns what
    happened."""
    invoices = Invoice.objects.select_for_update().filter(stripe_id=stripe_id, customer__in=of_env(env))
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
                    return other_env("invoice", stripe_id)
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
class StripeSubscription:
    """The fields of a Stripe subscription this app reads, checked (billing/stripe_inbound/sync.py reads them)."""

    id: str | None
    customer: str | None
    status: str | None
    product_id: str | None
    product_version: int | None
    price_ids: list[str]
    dates: dict


def _product_for_subscription(sub: StripeSubscription, customer: Customer) -> Product | None:
    if sub.product_id:
        products = products_of(customer).filter(product_id=sub.product_id)
        if sub.product_version is not None:
            products = products.filter(version=sub.product_version)
        product = products.order_by(F("custom_for").asc(nulls_last=True), "archived", "-version").first()
        if product is not None:
            return product
    # Custom products copy their base's prices, Stripe price ids included: only this customer's products
    # count, its own custom one first, as for a product named in the metadata.
    price = (
        Price.objects.filter(stripe_price_id__in=sub.price_ids, product__in=products_of(customer))
        .select_related("product")
        .order_by(F("product__custom_for").asc(nulls_last=True), "product__archived", "-product__version", "id")
        .first()
    )
    return price.product if price else None


def _subscribed(sub_id: str, env: str) -> CustomerProduct | None:
    """The customer product of `env` linked to a Stripe subscription, locked."""
    return (
        CustomerProduct.objects.select_for_update()
        .filter(stripe_subscription_id=sub_id, customer__in=of_env(env))
        .first()
    )


def _link_or_attach(sub: StripeSubscription, customer: Customer, status: str, reason: str) -> CustomerProduct | str:
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
    sub: StripeSubscription, customer: Customer, product: Product, status: str, reason: str
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


def subscription_from_stripe(
    *, sub: StripeSubscription, customer: Customer, status: str, env: str, created: int, reason: str
) -> str:
    """Bring the customer product of a Stripe subscription of `env` up to date (`status` is ours). Returns what
    happened."""
    with transaction.atomic():
        # The plan-change lock of the customer holding the subscription (or of the one it is for) comes first,
        # as in every plan change: a webhook racing an attach or a cancel waits, never deadlocks.
        holder = CustomerProduct.objects.filter(stripe_subscription_id=sub.id, customer__in=of_env(env))
        lock_customer_plans(holder.values_list("customer_id", flat=True).first() or customer.pk)
        cp = _subscribed(sub.id, env)
        if cp is None:
            if CustomerProduct.objects.filter(stripe_subscription_id=sub.id).exists():
                return other_env("subscription", sub.id)
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
