"""A customer's invoices in Stripe, outbound only: read one, void it, refund its payment, credit it. What is
stored and audited of the answers is `billing.services.invoices`'s. Every call is made in the environment's
own Stripe mode and raises StripeError when Stripe refuses or fails it."""

from __future__ import annotations

from billing.stripe_io.client import StripeError, call, client


def invoice_retrieve(*, env: str, stripe_id: str, expand: list[str] | None = None) -> dict:
    """The Stripe invoice as Stripe has it now."""
    params = {"expand": expand} if expand else None
    return call(env, client(env).v1.invoices.retrieve, stripe_id, params).to_dict()


def invoice_void(*, env: str, stripe_id: str, idempotency_key: str) -> dict:
    """Void an open Stripe invoice; the voided invoice."""
    return call(
        env, client(env).v1.invoices.void_invoice, stripe_id, None, {"idempotency_key": idempotency_key}
    ).to_dict()


def invoice_payment(*, env: str, stripe_id: str) -> dict:
    """What paid the invoice, as a refund names it: {"payment_intent": …} or {"charge": …}. Raises StripeError
    when the invoice has no payment to refund (paid out of band, or from the customer's credit balance)."""
    invoice = invoice_retrieve(env=env, stripe_id=stripe_id, expand=["payments"])
    # Since API version 2025-03-31 an invoice's payments are InvoicePayments; before, payment_intent/charge.
    for entry in (invoice.get("payments") or {}).get("data") or []:
        payment = entry.get("payment") or {}
        if entry.get("status") == "paid" and payment.get(payment.get("type") or ""):
            kind = payment["type"]
            return {kind: _ref(payment[kind])}
    for kind in ("payment_intent", "charge"):
        if invoice.get(kind):
            return {kind: _ref(invoice[kind])}
    raise StripeError(
        "Stripe has no payment of this invoice to refund (was it paid outside Stripe?).", code="invoice_no_payment"
    )


def _ref(value) -> str:
    return value["id"] if isinstance(value, dict) else value


def refund_create(*, env: str, payment: dict, amount: int, reason: str, metadata: dict, idempotency_key: str) -> dict:
    """Refund `amount` (minor units) of the payment `invoice_payment` named; the refund."""
    params = {**payment, "amount": amount, "metadata": metadata}
    if reason:
        params["reason"] = reason
    return call(env, client(env).v1.refunds.create, params, {"idempotency_key": idempotency_key}).to_dict()


def credit_note_create(*, env: str, params: dict, idempotency_key: str) -> dict:
    """Issue a Stripe credit note (`params` in Stripe's shape: invoice, amount or lines, reason, memo, …)."""
    return call(env, client(env).v1.credit_notes.create, params, {"idempotency_key": idempotency_key}).to_dict()
