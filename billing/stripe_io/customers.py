"""A customer's Stripe customer: its details pushed, created for a checkout, deleted (with the customer
here, or alone), and what people see on the customer when a push fails (`Customer.stripe_sync_error`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from django.db import transaction

from billing.stripe_io.client import StripeError, call, client, idempotency_key
from billing.stripe_io.config import is_configured
from customers.audit import AuditAction
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_delete, customer_stripe_link
from customers.validation import validate_reason

# Labels that start each kind of message in Customer.stripe_sync_error; a success clears its own kind.
DETAILS = "Name and email not sent to Stripe"
DISCOUNTS = "Coupons not updated in Stripe"
DELETE = "Not deleted in Stripe"
BACKFILL = "Invoices and subscriptions not read from Stripe"


# --- what people see when a push fails ----------------------------------------------------------


def record_failure(customer_pk: int, label: str, exc: StripeError) -> str:
    """Show on the customer why its push of `label`'s kind failed. Returns that message."""
    message = f"{label}: {exc.message}"
    Customer.objects.filter(pk=customer_pk).update(stripe_sync_error=message)
    return message


def record_success(customer_pk: int, label: str) -> None:
    """Clear the customer's failure message of `label`'s kind (one of another kind stays)."""
    Customer.objects.filter(pk=customer_pk, stripe_sync_error__startswith=label).update(stripe_sync_error="")


# --- details ------------------------------------------------------------------------------------


def customer_details_changed(*, customer, audit_entry) -> None:
    """Called inside customer_update when the name or email changed: push them once it commits."""
    if customer.stripe_id and is_configured(customer.env):
        transaction.on_commit(
            partial(
                push_customer_details,
                customer_pk=customer.pk,
                idempotency_key=idempotency_key("customer-update", audit_entry.pk),
            ),
            robust=True,
        )


def push_customer_details(*, customer_pk: int, idempotency_key: str) -> str:
    """Send the customer's current name and email to its Stripe customer. Returns the error, or ""."""

    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or not customer.stripe_id or not is_configured(customer.env):
        return ""
    try:
        call(
            customer.env,
            client(customer.env).v1.customers.update,
            customer.stripe_id,
            {"name": customer.name, "email": customer.email},
            {"idempotency_key": idempotency_key},
        )
    except StripeError as exc:
        return record_failure(customer.pk, DETAILS, exc)
    record_success(customer.pk, DETAILS)
    return ""


# --- creating and deleting ----------------------------------------------------------------------


def ensure_stripe_customer(customer) -> str:
    """The customer's Stripe id, creating the Stripe customer (and storing the link) if it has none."""

    if customer.stripe_id:
        return customer.stripe_id
    # A new key after each unlink: within Stripe's 24 h key memory a re-created customer must not
    # replay the Stripe customer that was deleted.
    generation = (
        AuditEntry.objects.filter(customer=customer, action=AuditAction.CUSTOMER_STRIPE_UNLINK)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )
    params = {"name": customer.name, "metadata": {"customer_id": customer.customer_id, "env": customer.env}}
    if customer.email:
        params["email"] = customer.email
    created = call(
        customer.env,
        client(customer.env).v1.customers.create,
        params,
        {"idempotency_key": idempotency_key("customer-create", customer.pk, generation)},
    )
    linked = customer_stripe_link(
        customer=customer, stripe_id=created.id, expected="", actor=None, reason="Stripe customer created for checkout"
    )
    return linked.stripe_id


def customer_delete_in_stripe(*, customer, actor=None) -> None:
    """Delete the customer's Stripe customer and unlink it here (the Stripe half of
    `customer_delete_everywhere`).

    Raises StripeError when Stripe isn't connected or refuses; a Stripe customer that is already gone
    counts as deleted.
    """

    stripe_id = customer.stripe_id
    if not stripe_id:
        return
    try:
        call(customer.env, client(customer.env).v1.customers.delete, stripe_id)
    except StripeError as exc:
        if exc.code != "resource_missing":
            if exc.code != "stripe_not_connected":
                record_failure(customer.pk, DELETE, exc)
            raise
    record_success(customer.pk, DELETE)
    customer_stripe_link(customer=customer, stripe_id="", expected=stripe_id, actor=actor, reason="Deleted in Stripe")


@dataclass(frozen=True)
class Deletion:
    """What `customer_delete_everywhere` did besides deleting the customer here."""

    in_stripe: bool  # its Stripe customer was deleted (or was gone already) and unlinked
    stripe_refusal: StripeError | None = None  # why not, when it was asked for and the delete here went ahead


def customer_delete_everywhere(
    *, customer, actor, reason: str, delete_in_stripe: bool, all_or_nothing: bool
) -> Deletion:
    """Delete the customer here (soft: ops can restore it) and, with `delete_in_stripe`, its Stripe
    customer too ("Also delete in Stripe", the API's `delete_in_stripe`).

    Stripe goes first, outside any transaction, and only then the customer here: Stripe's deletion
    can't be undone and ours can, so a refusal is known before anything is deleted here, and the
    local data never points at a Stripe customer that is gone. When Stripe refuses (or isn't connected
    for the customer's environment) its link stays, the refusal is kept on the customer ("Not deleted
    in Stripe: …"), and then:
    - with `all_or_nothing` the StripeError is raised and nothing is deleted here (the API: its client
      asked for both and can try again);
    - without, the customer is deleted here all the same and the refusal is returned in
      `Deletion.stripe_refusal` for the person to see (the dashboard: deleting here is what was asked).
    """
    reason = validate_reason(reason)  # before Stripe: a reason refused afterwards would half-delete
    refusal = None
    in_stripe = delete_in_stripe and bool(customer.stripe_id)
    if in_stripe:
        try:
            customer_delete_in_stripe(customer=customer, actor=actor)
        except StripeError as exc:
            if all_or_nothing:
                raise
            in_stripe, refusal = False, exc
    customer_delete(customer=customer, actor=actor, reason=reason)
    return Deletion(in_stripe=in_stripe, stripe_refusal=refusal)
