"""Voiding, refunding and crediting a customer's invoices, in the environment's own Stripe mode.

Stripe keeps the books: each action asks Stripe first, outside any transaction, and records here what Stripe
answered (the invoice's status, the refund, the credit note) in one transaction, audited with the actor and
the reason. What Stripe refuses changes nothing here. Each action refuses an invoice that changed since the
person looked (`expected_status`, `expected_refunded`), and a retry of the same request (the same
idempotency key, the same Stripe object) is recorded once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import transaction

from billing.models import CreditNote, CreditNoteReason, Invoice, InvoiceRefund, InvoiceStatus
from billing.money import format_money
from billing.stripe_io import invoices as stripe_invoices
from billing.stripe_io.client import StripeError, idempotency_key
from billing.stripe_io.config import is_configured
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.validation import require_reason

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")  # Stripe's refund reasons
CREDIT_DESTINATIONS = ("customer_balance", "refund", "out_of_band")
# Our own codes for Stripe failing (not refusing): those keep their gateway status.
STRIPE_OUTAGES = {"stripe_unreachable", "stripe_rate_limited", "stripe_api_error", "stripe_auth_failed"}


def stripe_refused(exc: StripeError) -> ServiceError:
    """Stripe's answer as a refusal the person can act on: a 400 with Stripe's code (a 502/503/504 when
    Stripe failed, not refused). Nothing local changed."""
    status = exc.status if exc.code in STRIPE_OUTAGES or exc.status != 502 else 400
    return ServiceError(f"{exc.message} Nothing was changed.", code=exc.code, status=status)


def _fresh(invoice: Invoice, *, expected_status: str, expected_refunded: int | None = None) -> Invoice:
    """The invoice as stored now; Conflict when it is not what the person saw."""
    current = Invoice.objects.select_related("customer").get(pk=invoice.pk)
    if current.status != expected_status:
        raise Conflict(
            f"This invoice is {current.get_status_display().lower()} now, no longer "
            f"{InvoiceStatus(expected_status).label.lower()}: reopen it to see where it stands.",
            code="invoice_changed",
        )
    if expected_refunded is not None and current.amount_refunded != expected_refunded:
        raise Conflict(
            f"{format_money(current.amount_refunded, current.currency)} of this invoice is refunded now: reopen it "
            "to see what is left to refund.",
            code="invoice_changed",
        )
    if not current.stripe_id:
        raise ServiceError("This invoice is not in Stripe.", code="invoice_not_in_stripe")
    if not is_configured(current.customer.env):
        raise ServiceError(
            f"Stripe is not connected for {current.customer.env}.", code="stripe_not_connected", status=503
        )
    return current


def _audit(invoice: Invoice, action: AuditAction, *, actor: Actor, reason: str, before: dict, after: dict) -> None:
    audit_record(
        actor=actor,
        action=action,
        customer=invoice.customer,
        target_type="invoice",
        target_id=invoice.stripe_id,
        before=before,
        after=after,
        reason=reason,
    )


def invoice_void(*, invoice: Invoice, actor: Actor, reason: str, expected_status: str = InvoiceStatus.OPEN) -> Invoice:
    """Void an open invoice in Stripe, then here."""
    reason = require_reason(reason)
    current = _fresh(invoice, expected_status=expected_status)
    if current.status != InvoiceStatus.OPEN:
        raise ServiceError("Only an open invoice can be voided.", code="invoice_not_open")
    try:
        voided = stripe_invoices.invoice_void(
            env=current.customer.env,
            stripe_id=current.stripe_id,
            idempotency_key=idempotency_key("invoice", current.pk, "void"),
        )
    except StripeError as exc:
        raise stripe_refused(exc) from exc
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().select_related("customer").get(pk=current.pk)
        before = locked.status
        locked.status = voided.get("status") or InvoiceStatus.VOID
        locked.save(update_fields=["status"])
        if before != locked.status:
            _audit(
                locked,
                AuditAction.INVOICE_VOID,
                actor=actor,
                reason=reason,
                before={"status": before},
                after={"status": locked.status},
            )
    return locked


def invoice_refund(
    *,
    invoice: Invoice,
    actor: Actor,
    amount: int,
    reason: str,
    stripe_reason: str = "requested_by_customer",
    expected_refunded: int,
) -> InvoiceRefund:
    """Refund `amount` (minor units) of a paid invoice's payment in Stripe, then record it here."""
    reason = require_reason(reason)
    if stripe_reason and stripe_reason not in REFUND_REASONS:
        raise ServiceError(f"A refund's reason is one of {', '.join(REFUND_REASONS)}.", field="stripe_reason")
    current = _fresh(invoice, expected_status=InvoiceStatus.PAID, expected_refunded=expected_refunded)
    if amount <= 0:
        raise ServiceError("Refund an amount above zero.", code="invalid_amount", field="amount")
    if amount > current.refundable:
        raise ServiceError(
            f"At most {format_money(current.refundable, current.currency)} of this invoice can be refunded.",
            code="amount_too_large",
            field="amount",
        )
    env = current.customer.env
    try:
        payment = stripe_invoices.invoice_payment(env=env, stripe_id=current.stripe_id)
        refund = stripe_invoices.refund_create(
            env=env,
            payment=payment,
            amount=amount,
            reason=stripe_reason,
            metadata={"invoice": current.stripe_id},
            idempotency_key=idempotency_key("invoice", current.pk, "refund", expected_refunded, amount),
        )
    except StripeError as exc:
        raise stripe_refused(exc) from exc
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().select_related("customer").get(pk=current.pk)
        recorded, created = InvoiceRefund.objects.get_or_create(
            stripe_id=refund["id"], defaults={"invoice": locked, "amount": refund["amount"], "reason": reason}
        )
        if created:
            before = locked.amount_refunded
            locked.amount_refunded = min(locked.amount_paid, before + recorded.amount)
            locked.save(update_fields=["amount_refunded"])
            _audit(
                locked,
                AuditAction.INVOICE_REFUND,
                actor=actor,
                reason=reason,
                before={"amount_refunded": before},
                after={"amount_refunded": locked.amount_refunded, "refund": recorded.stripe_id},
            )
    return recorded


@dataclass(frozen=True)
class CreditLine:
    """A line of the invoice to credit: `quantity` of its units, or `amount` (minor units) of it."""

    id: str
    quantity: int | None = None
    amount: int | None = None


def credit_note_params(
    invoice: Invoice,
    *,
    amount: int | None,
    lines: list[CreditLine] | None,
    credit_reason: str,
    memo: str,
    destination: str,
) -> dict:
    """Stripe's credit note parameters for crediting the invoice `amount` or `lines`; ServiceError for a request
    that cannot be one."""
    if (amount is None) == (not lines):
        raise ServiceError("Credit either an amount or lines of the invoice, not both.", field="amount")
    if credit_reason and credit_reason not in CreditNoteReason.values:
        raise ServiceError(
            f"A credit note's reason is one of {', '.join(CreditNoteReason.values)}.", field="credit_reason"
        )
    if destination not in CREDIT_DESTINATIONS:
        raise ServiceError(f"destination is one of {', '.join(CREDIT_DESTINATIONS)}.", field="destination")
    params: dict = {"invoice": invoice.stripe_id}
    if credit_reason:
        params["reason"] = credit_reason
    if memo:
        params["memo"] = memo[:500]
    if amount is not None:
        if amount <= 0:
            raise ServiceError("Credit an amount above zero.", code="invalid_amount", field="amount")
        total = amount
        params["amount"] = amount
    else:
        params["lines"], total = _credit_lines(invoice, lines or [])
    if invoice.status == InvoiceStatus.PAID:
        # Money already paid goes somewhere: Stripe wants the split named when it is not the credit balance.
        params[
            {"customer_balance": "credit_amount", "refund": "refund_amount", "out_of_band": "out_of_band_amount"}[
                destination
            ]
        ] = total
    return params


def _credit_lines(invoice: Invoice, lines: list[CreditLine]) -> tuple[list[dict], int]:
    known = {line["id"]: line for line in invoice.lines or []}
    if invoice.lines is None:
        raise ServiceError(
            "This invoice was recorded before its lines were kept: credit an amount instead.", field="lines"
        )
    params, total = [], 0
    for line in lines:
        stored = known.get(line.id)
        if stored is None:
            raise ServiceError(f"The invoice has no line {line.id}.", code="line_not_found", field="lines")
        if (line.quantity is None) == (line.amount is None):
            raise ServiceError("Credit a line's quantity or an amount of it.", field="lines")
        if line.amount is not None:
            params.append({"type": "invoice_line_item", "invoice_line_item": line.id, "amount": line.amount})
            total += line.amount
        else:
            params.append({"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": line.quantity})
            unit = stored["amount"] // max(1, stored.get("quantity") or 1)
            total += unit * line.quantity
    return params, total


def invoice_credit(
    *,
    invoice: Invoice,
    actor: Actor,
    reason: str,
    expected_status: str,
    amount: int | None = None,
    lines: list[CreditLine] | None = None,
    credit_reason: str = "",
    memo: str = "",
    destination: str = "customer_balance",
    send_email: bool = False,
) -> CreditNote:
    """Issue a Stripe credit note on an open or paid invoice, then record it (and the invoice's new figures)."""
    reason = require_reason(reason)
    current = _fresh(invoice, expected_status=expected_status)
    if current.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
        raise ServiceError("Only an open or paid invoice can be credited.", code="invoice_not_creditable")
    params = credit_note_params(
        current, amount=amount, lines=lines, credit_reason=credit_reason, memo=memo, destination=destination
    )
    params["email_type"] = "credit_note" if send_email else "none"
    try:
        note = stripe_invoices.credit_note_create(
            env=current.customer.env,
            params=params,
            idempotency_key=idempotency_key(
                "invoice", current.pk, "credit", current.credit_notes.count(), _digest(params)
            ),
        )
    except StripeError as exc:
        raise stripe_refused(exc) from exc
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().select_related("customer").get(pk=current.pk)
        recorded, created = CreditNote.objects.get_or_create(stripe_id=note["id"], defaults=note_fields(note, locked))
        if created:
            refunded = recorded.refund_amount
            if refunded:
                locked.amount_refunded = min(locked.amount_paid, locked.amount_refunded + refunded)
                locked.save(update_fields=["amount_refunded"])
            _audit(
                locked,
                AuditAction.INVOICE_CREDIT,
                actor=actor,
                reason=reason,
                before={},
                after={"credit_note": recorded.stripe_id, "total": recorded.total, "refund_amount": refunded},
            )
    return recorded


def _digest(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def note_fields(note: dict, invoice: Invoice) -> dict:
    """A CreditNote's columns from Stripe's credit note."""
    refunded = sum(r.get("amount_refunded") or 0 for r in note.get("refunds") or [])
    out_of_band = note.get("out_of_band_amount") or 0
    return {
        "invoice": invoice,
        "number": note.get("number") or "",
        "status": note.get("status") or "issued",
        "total": note.get("total") or 0,
        "refund_amount": refunded,
        "credit_amount": max(0, (note.get("post_payment_amount") or 0) - refunded - out_of_band),
        "out_of_band_amount": out_of_band,
        "reason": note.get("reason") or "",
        "memo": note.get("memo") or "",
        "pdf": note.get("pdf") or "",
        "lines": [
            {
                "invoice_line_item": line.get("invoice_line_item"),
                "description": line.get("description") or "",
                "quantity": line.get("quantity"),
                "amount": line.get("amount") or 0,
            }
            for line in (note.get("lines") or {}).get("data") or []
        ],
    }
