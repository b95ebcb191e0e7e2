"""A customer's audit trail as the page's Activity shows it: the entries it reads (one query) and
each entry as a sentence without its actor ("set Messages 800 → 1,240")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from billing.models import CustomerProductStatus, InvoiceStatus
from billing.money import format_money
from billing.usage_graph import HISTORY_MARKS_LIMIT, balance_marks_query
from customers.audit import AuditAction
from customers.formatting import format_qty
from customers.models import DETAIL_FIELDS, AuditEntry, Customer

ACTIVITY_LIMIT = 12

# Names of the page's objects by their ids: {"feature": {...}, "product": {...}, "reward": {...}}.
Names = dict[str, dict[str, str]]

# A customer's fields as a sentence names them: "changed email, metadata".
FIELD_LABELS = {
    **{field: "ID" if field == "id" else label.lower() for field, label in DETAIL_FIELDS.items()},
    "send_email_receipts": "email receipts",
}
ADMIN_VERBS = {
    AuditAction.ADMIN_CREATE: "added",
    AuditAction.ADMIN_UPDATE: "changed",
    AuditAction.ADMIN_DELETE: "deleted",
}


@dataclass
class ActivityItem:
    entry: AuditEntry
    text: str

    @property
    def actor(self) -> str:
        return self.entry.actor_label

    @property
    def reason(self) -> str:
        return self.entry.reason


def _before(entry: AuditEntry) -> dict:
    return entry.before or {}


def _after(entry: AuditEntry) -> dict:
    return entry.after or {}


def _feature(entry: AuditEntry, names: Names) -> str:
    ref = _after(entry).get("feature") or _before(entry).get("feature") or ""
    return names["feature"].get(ref, ref or "a balance")


def _named(kind: str, entry: AuditEntry, names: Names) -> str:
    return names[kind].get(entry.target_id, entry.target_id)


def _remaining_change(entry: AuditEntry) -> str:
    return f"{format_qty(_before(entry).get('remaining'))} → {format_qty(_after(entry).get('remaining'))}"


def _status(value) -> str:
    return CustomerProductStatus(value).label.lower() if value in CustomerProductStatus.values else str(value)


def _invoice_status(value) -> str:
    return InvoiceStatus(value).label.lower() if value in InvoiceStatus.values else str(value)


def _product_attached(entry: AuditEntry, names: Names) -> str:
    replaced = [names["product"].get(p, p) for p in _before(entry).get("products", [])]
    return f"attached {_named('product', entry, names)}" + (f" (replacing {', '.join(replaced)})" if replaced else "")


def _product_updated(entry: AuditEntry, names: Names) -> str:
    before, after = _before(entry), _after(entry)
    product = _named("product", entry, names)
    if list(after) == ["canceled_at"]:
        return (
            f"cancelled {product} at the end of its billing period"
            if after["canceled_at"]
            else f"uncancelled {product}"
        )
    if "status" in after:
        return f"changed {product} from {_status(before.get('status'))} to {_status(after['status'])}"
    return f"updated {product} ({', '.join(k.replace('_', ' ') for k in after)})"


def _invoice(entry: AuditEntry, names: Names) -> str:
    after = _after(entry)
    verb = "recorded" if entry.action == AuditAction.INVOICE_CREATE else "updated"
    status = f" · {_invoice_status(after['status'])}" if "status" in after else ""
    total = f" · {format_money(after['total'], after.get('currency', 'usd'))}" if "total" in after else ""
    return f"{verb} invoice {entry.target_id}{status}{total}"


def _customer_updated(entry: AuditEntry, names: Names) -> str:
    before, after = _before(entry), _after(entry)
    if list(after) == ["name"] or list(after) == ["email"]:
        key = list(after)[0]
        return f"changed {key} “{before.get(key) or '—'}” → “{after.get(key) or '—'}”"
    changed = [FIELD_LABELS.get(k, k) for k in (after or before)]
    return f"changed {', '.join(changed) or 'details'}"


def _in_admin(entry: AuditEntry, names: Names) -> str:
    after = _after(entry)
    fields = f" ({', '.join(k.replace('_', ' ') for k in after)})" if entry.action == AuditAction.ADMIN_UPDATE else ""
    return f"{ADMIN_VERBS[entry.action]} {entry.target_type.replace('_', ' ')}{fields} in Django admin"


SENTENCES: dict[str, Callable[[AuditEntry, Names], str]] = {
    AuditAction.BALANCE_SET: lambda e, n: f"set {_feature(e, n)} {_remaining_change(e)}",
    AuditAction.BALANCE_ADD: lambda e, n: f"added to {_feature(e, n)}: {_remaining_change(e)}",
    AuditAction.BALANCE_RESET: lambda e, n: f"reset {_feature(e, n)} to {format_qty(_after(e).get('remaining'))}",
    AuditAction.BALANCE_CREATE: lambda e, n: f"granted {format_qty(_after(e).get('granted'))} {_feature(e, n)}",
    AuditAction.BALANCE_DELETE: lambda e, n: f"deleted a granted balance of {_feature(e, n)}",
    AuditAction.USAGE_RECORD: lambda e, n: (
        f"recorded {format_qty(_after(e).get('value'))} {_feature(e, n)} usage"
        + (f", {format_qty(_after(e)['remaining'])} left" if _after(e).get("remaining") is not None else "")
    ),
    AuditAction.BALANCE_CHECK_RUN: lambda e, n: (
        f"checked {_feature(e, n)} for {format_qty(_after(e).get('required_balance'))}: "
        + ("allowed" if _after(e).get("allowed") else "not allowed")
    ),
    AuditAction.ENTITY_CREATE: lambda e, n: f"created entity {_after(e).get('name') or e.target_id} ({_feature(e, n)})",
    AuditAction.ENTITY_DELETE: lambda e, n: (
        f"deleted entity {_before(e).get('name') or e.target_id} ({_feature(e, n)})"
    ),
    AuditAction.PRODUCT_ATTACH: _product_attached,
    AuditAction.PRODUCT_CUSTOMIZE: lambda e, n: f"made a custom {_named('product', e, n)} for this customer",
    AuditAction.REWARD_APPLY: lambda e, n: f"applied coupon {_named('reward', e, n)}",
    AuditAction.REWARD_REMOVE: lambda e, n: f"removed coupon {_named('reward', e, n)}",
    AuditAction.PRODUCT_UPDATE: _product_updated,
    AuditAction.PRODUCT_SCHEDULE: lambda e, n: f"scheduled {_named('product', e, n)} for the end of the billing period",
    AuditAction.PRODUCT_STRIPE_LINK: lambda e, n: (
        f"linked {_named('product', e, n)} to Stripe subscription {_after(e).get('stripe_subscription_id', '')}"
    ).rstrip(),
    AuditAction.INVOICE_CREATE: _invoice,
    AuditAction.INVOICE_UPDATE: _invoice,
    AuditAction.CUSTOMER_STRIPE_LINK: lambda e, n: f"linked to Stripe customer {_after(e).get('stripe_id', '')}",
    AuditAction.CUSTOMER_STRIPE_UNLINK: lambda e, n: f"unlinked from Stripe customer {_before(e).get('stripe_id', '')}",
    AuditAction.CUSTOMER_CREATE: lambda e, n: "created the customer",
    AuditAction.CUSTOMER_UPDATE: _customer_updated,
    AuditAction.CUSTOMER_DELETE: lambda e, n: "deleted the customer",
    AuditAction.CUSTOMER_RESTORE: lambda e, n: "restored the customer",
    **dict.fromkeys(ADMIN_VERBS, _in_admin),
}


def activity_text(entry: AuditEntry, names: Names) -> str:
    """What happened, as a sentence without its actor: "set Messages 800 → 1,240"."""
    sentence = SENTENCES.get(entry.action)
    return sentence(entry, names) if sentence else entry.action.replace(".", " ").replace("_", " ")


def page_audit_entries(customer: Customer, *, since: datetime, limit: int = ACTIVITY_LIMIT) -> list[AuditEntry]:
    """The page's audit trail in one query, newest first: the latest `limit` entries (Activity)
    and the balance resets and edits since `since` (the graphs' markers)."""
    latest = AuditEntry.objects.filter(customer=customer).order_by("-created_at", "-id").values("pk")[:limit]
    wanted = Q(pk__in=latest) | balance_marks_query(customer, since)
    return list(
        AuditEntry.objects.filter(customer=customer)
        .filter(wanted)
        .order_by("-created_at", "-id")[: limit + HISTORY_MARKS_LIMIT]
    )


def customer_activity(entries: list[AuditEntry], names: Names, *, limit: int = ACTIVITY_LIMIT) -> list[ActivityItem]:
    """The latest of these audit entries (newest first, as page_audit_entries reads them) as sentences."""
    return [ActivityItem(entry=e, text=activity_text(e, names)) for e in entries[:limit]]
