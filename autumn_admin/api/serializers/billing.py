"""A plan change's preview in Autumn's shape (billing.preview_attach, billing.preview_update): what is due
now as line items, the plans coming in and going out, and the next cycle."""

from __future__ import annotations

from billing.plan_preview import CHECKOUT, PlanPreview, recurring_amount
from billing.shapes.units import major_units, ms


def _line(preview: PlanPreview, amount: int, description: str) -> dict:
    money = major_units(amount, preview.currency)
    return {
        "display_name": preview.product.name,
        "description": description,
        "subtotal": money,
        "total": money,
        "plan_id": preview.product.product_id,
        "feature_id": None,
        "quantity": 1,
    }


def _quantities(changes, *, after: bool) -> list[dict]:
    rows = []
    for change in changes:
        value = change.after if after else change.before
        if value is not None and change.feature.is_metered:
            rows.append({"feature_id": change.feature.feature_id, "quantity": float(value)})
    return rows


def preview_json(preview: PlanPreview) -> dict:
    """The preview of an attach or a plan change."""
    due = preview.due_today
    line_items = [_line(preview, due, _due_description(preview))] if due else []
    incoming = [
        {
            "plan_id": product.product_id,
            "feature_quantities": _quantities(preview.balances, after=True),
            "effective_at": ms(preview.effective_at),
            "canceled_at": None,
            "expires_at": None,
        }
        for product in preview.incoming
    ]
    outgoing = [
        {
            "plan_id": cp.product.product_id,
            "feature_quantities": _quantities(preview.balances, after=False),
            "effective_at": ms(preview.effective_at),
            "canceled_at": ms(cp.canceled_at),
            "expires_at": ms(preview.effective_at),
        }
        for cp in preview.outgoing
    ]
    next_cycle = None
    if preview.next_invoice_at is not None and preview.incoming:
        amount = recurring_amount(preview.incoming[0]) if preview.incoming else 0
        line = _line(preview, amount, f"{preview.product.name} for the next billing period")
        next_cycle = {
            "starts_at": ms(preview.next_invoice_at),
            "subtotal": line["total"],
            "total": line["total"],
            "line_items": [line] if amount else [],
            "usage_line_items": [],
        }
    total = major_units(due, preview.currency)
    return {
        "customer_id": preview.customer.customer_id,
        "line_items": line_items,
        "subtotal": total,
        "total": total,
        "currency": preview.currency,
        "incoming": incoming,
        "outgoing": outgoing,
        "next_cycle": next_cycle,
        "redirect_to_checkout": preview.default_method == CHECKOUT,
        "checkout_type": "stripe_checkout" if preview.default_method == CHECKOUT else None,
    }


def _due_description(preview: PlanPreview) -> str:
    if preview.action == "upgrade" and preview.subscription is not None:
        return f"{preview.product.name}, prorated for the rest of the billing period"
    return f"{preview.product.name}, first payment"
