"""A customer's product moving on as its subscription does (Stripe's webhooks): a status or a date changed, and
what an expiry brings (its balances go; a plan's customer falls back on the group's default plan)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    Product,
)
from billing.services.products import lock_customer_plans, product_attach
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import ServiceError

# --- a subscription moving on -----------------------------------------------------------------------

UPDATABLE_FIELDS = frozenset(
    {"status", "current_period_start", "current_period_end", "canceled_at", "ended_at", "trial_ends_at"}
)


@transaction.atomic
def customer_product_update(
    *,
    customer_product: CustomerProduct,
    actor: Actor,
    reason: str = "",
    now: datetime | None = None,
    **changes,
) -> CustomerProduct:
    """Change a customer product's status or dates, as its subscription moves on (Stripe webhooks).

    `changes` may hold status, current_period_start, current_period_end, canceled_at, ended_at and
    trial_ends_at. Expiring a product removes its balances (its features stop), and expiring a plan
    puts the customer back on the default plan of its group when no other plan of that group is live.
    """
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ServiceError(f"{', '.join(sorted(unknown))} can't be changed here.", code="invalid_input")
    if "status" in changes and changes["status"] not in CustomerProductStatus.values:
        raise ServiceError(f"Unknown status {changes['status']!r}.", code="invalid_input", field="status")
    now = now or timezone.now()
    lock_customer_plans(customer_product.customer_id)
    locked = (
        CustomerProduct.objects.select_for_update().select_related("product", "customer").get(pk=customer_product.pk)
    )
    expiring = changes.get("status") == CustomerProductStatus.EXPIRED and locked.status in LIVE_PRODUCT_STATUSES
    if expiring and changes.get("ended_at") is None:
        changes["ended_at"] = now
    changed = {k: v for k, v in changes.items() if getattr(locked, k) != v}
    if not changed:
        return locked
    before = {k: getattr(locked, k) for k in changed}
    for key, value in changed.items():
        setattr(locked, key, value)
    locked.save(update_fields=list(changed))
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_UPDATE,
        customer=locked.customer,
        target_type="product",
        target_id=locked.product.product_id,
        before=before,
        after=changed,
        reason=reason,
    )
    if expiring:
        _after_expiry(locked, actor=actor, now=now)
    customer_product.__dict__.update({k: getattr(locked, k) for k in changed})
    return locked


def _after_expiry(cp: CustomerProduct, *, actor: Actor, now: datetime) -> None:
    """An expired product's features stop (its balances go); a plan's customer left without a plan of its group
    goes back on the group's default plan."""
    Balance.objects.filter(customer_product=cp).delete()
    product = cp.product
    still_on_plan = CustomerProduct.objects.filter(
        customer=cp.customer,
        status__in=LIVE_PRODUCT_STATUSES,
        product__is_add_on=False,
        product__group=product.group,
    ).exists()
    if not product.is_add_on and not still_on_plan:
        defaults = Product.objects.defaults().filter(is_add_on=False, group=product.group).exclude(pk=product.pk)
        for default in defaults:
            product_attach(customer=cp.customer, product=default, actor=actor, now=now, reason=f"{product.name} ended")
