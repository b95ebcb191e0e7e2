"""What `sync_stripe` does for each linked customer: read its invoices and subscriptions back from its
environment's Stripe mode and apply them (billing/stripe_inbound/sync.py), record how that went, and send
again a push that failed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from billing.services.rewards import discounts_push
from billing.stripe_inbound import sync
from billing.stripe_inbound.fields import Malformed
from billing.stripe_io.client import StripeError, client, idempotency_key, paged
from billing.stripe_io.customers import (
    BACKFILL,
    DETAILS,
    DISCOUNTS,
    push_customer_details,
    record_failure,
    record_success,
)
from customers.models import AuditEntry, Customer

# The backfill stamps what it read slightly in the past, so a clock running ahead of Stripe's can
# never make it hide a real event that happened just after.
BACKFILL_CLOCK_MARGIN = 60
REASON = "Read from Stripe by sync_stripe"


@dataclass
class BackfillResult:
    """How many of a customer's invoices and subscriptions came to what (sync's outcomes)."""

    invoices: dict[str, int] = field(default_factory=dict)
    subscriptions: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        def part(name, counts):
            total = sum(counts.values())
            detail = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()) if what != "unchanged")
            return f"{total} {name}" + (f" ({detail})" if detail else "")

        return f"{part('invoices', self.invoices)}, {part('subscriptions', self.subscriptions)}"


def invoices_of(customer) -> Iterator[dict]:
    """The invoices of the customer's Stripe customer, read in its environment's Stripe mode."""
    env = customer.env
    return paged(env, client(env).v1.invoices.list, {"customer": customer.stripe_id})


def subscriptions_of(customer) -> Iterator[dict]:
    """The subscriptions (ended ones too) of the customer's Stripe customer, in its environment's mode."""
    env = customer.env
    return paged(env, client(env).v1.subscriptions.list, {"customer": customer.stripe_id, "status": "all"})


def _count(counts: dict[str, int], apply, obj: dict, **kwargs) -> None:
    try:
        outcome = apply(obj, **kwargs)
    except Malformed:
        outcome = "malformed"
    counts[outcome] = counts.get(outcome, 0) + 1


def backfill_customer(customer: Customer) -> BackfillResult:
    """Read the customer's invoices and subscriptions from its environment's Stripe mode and apply
    them. Safe to repeat: rows are upserted by Stripe id. Raises StripeError when Stripe fails, or is
    not connected for the customer's environment (what was applied stays)."""
    result = BackfillResult()
    read_at = int(time.time()) - BACKFILL_CLOCK_MARGIN
    for obj in invoices_of(customer):
        _count(result.invoices, sync.apply_invoice, obj, env=customer.env, created=read_at, reason=REASON)
    for obj in subscriptions_of(customer):
        _count(result.subscriptions, sync.apply_subscription, obj, env=customer.env, created=read_at, reason=REASON)
    return result


def record_backfill(customer, exc: StripeError | None) -> None:
    """Show on the customer why its backfill failed (`exc`), or clear that message after one that worked."""
    if exc is None:
        record_success(customer.pk, BACKFILL)
    else:
        record_failure(customer.pk, BACKFILL, exc)


def retry_failed_push(customer) -> str:
    """Send again what the customer's last failed push was about. Returns the error, or ""."""

    error = customer.stripe_sync_error
    latest = AuditEntry.objects.filter(customer=customer).order_by("-id").values_list("id", flat=True).first()
    if error.startswith(DETAILS):
        return push_customer_details(
            customer_pk=customer.pk, idempotency_key=idempotency_key("customer-resend", latest)
        )
    if error.startswith(DISCOUNTS):
        return discounts_push(customer_pk=customer.pk, idempotency_prefix=idempotency_key("rewards-resend", latest))
    return ""
