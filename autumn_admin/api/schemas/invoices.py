"""Invoices: the filters of invoices.list and the invoice as it (and an expanded customer) shows it."""

from __future__ import annotations

from typing import Literal

from ninja import Schema

from autumn_admin.api.schemas.common import CustomerId, Number, PageParams

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
