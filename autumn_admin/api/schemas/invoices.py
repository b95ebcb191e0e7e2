"""Invoices: the filters of invoices.list and the invoice as it (and an expanded customer) shows it."""

from __future__ import annotations

from typing import Literal

from ninja import Schema

from autumn_admin.api.schemas.common import CustomerId, Number, PageParams, Params, not_supported

InvoiceStatus = Literal["draft", "open", "void", "paid", "uncollectible"]


class ListInvoicesParams(PageParams):
    customer_id: CustomerId | None = None
    status: list[InvoiceStatus] | None = None


class InvoiceOut(Schema):
    id: str
    customer_id: str | None
    entity_id: str | None
    plan_ids: list[str]
    stripe_id: str
    processor_type: Literal["stripe"]
    status: str
    total: Number
    amount_paid: Number | None
    refunded_amount: Number
    currency: str
    created_at: Number
    hosted_invoice_url: str | None


# An alias: a field named `list` would shadow the builtin inside its class body.
InvoiceOutList = list[InvoiceOut]


class InvoiceListOut(Schema):
    list: InvoiceOutList
    next_cursor: str | None


class VoidInvoiceParams(Params):
    invoice_id: str


class InvoiceResponseOut(Schema):
    invoice: InvoiceOut


class CreditLineIn(Params):
    id: str
    amount: Number | None = None
    quantity: int | None = None


class IssueCreditNoteParams(Params):
    invoice_id: str
    amount: Number | None = None
    lines: list[CreditLineIn] | None = None
    destination: Literal["customer_balance", "refund", "out_of_band"] = "customer_balance"
    send_email: bool = True
    reason: Literal["duplicate", "fraudulent", "order_change", "product_unsatisfactory"] | None = None
    memo: str | None = None
    preview: not_supported("a credit note is issued, not previewed, here", harmless=(False,)) = None


class CreditNoteLineOut(Schema):
    invoice_line_item_id: str | None
    description: str | None
    quantity: Number | None
    amount: Number
    discount_amount: Number


class CreditNoteOut(Schema):
    id: str | None
    invoice_id: str
    number: str | None
    status: str | None
    currency: str
    subtotal: Number
    discount_amount: Number
    tax_amount: Number
    total: Number
    pre_payment_amount: Number
    post_payment_amount: Number
    refund_amount: Number
    credit_amount: Number
    out_of_band_amount: Number
    reason: str | None
    memo: str | None
    pdf: str | None
    lines: list[CreditNoteLineOut]


class CreditNoteResponseOut(Schema):
    credit_note: CreditNoteOut
