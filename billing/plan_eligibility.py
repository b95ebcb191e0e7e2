"""What attaching a plan would do for one customer: the `customer_eligibility` of plans.list and plans.get."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from billing.models import HELD_PRODUCT_STATUSES, LIVE_PRODUCT_STATUSES, CustomerProduct, CustomerProductStatus, Product
from billing.plan_preview import is_upgrade
from customers.models import Customer


@dataclass(frozen=True)
class Eligibility:
    attach_action: str  # "activate" | "upgrade" | "downgrade" | "none" | "purchase"
    status: str | None  # "active" | "scheduled" while the customer has the plan
    trialing: bool
    canceling: bool
    trial_available: bool = False  # attaching it starts its free trial


def held_products(customer: Customer) -> list[CustomerProduct]:
    """The customer's live and scheduled products, and those that had a trial, with their prices: one query
    for the whole list."""
    return list(
        CustomerProduct.objects.filter(customer=customer)
        .filter(Q(status__in=HELD_PRODUCT_STATUSES) | Q(trial_ends_at__isnull=False))
        .select_related("product")
        .prefetch_related("product__prices")
    )


def eligibility(product: Product, held: list[CustomerProduct]) -> Eligibility:
    """On the plan already (any version, or a custom copy of it): nothing to do. A one-off product is
    bought; an add-on, or a plan of a group the customer has none of, is activated; another plan of
    the group of the customer's current one is an upgrade or a downgrade by `plans.is_upgrade`."""
    tried = any(cp.product.product_id == product.product_id and cp.trial_ends_at for cp in held)
    held = [cp for cp in held if cp.status in HELD_PRODUCT_STATUSES]
    mine = next((cp for cp in held if cp.product.product_id == product.product_id), None)
    if mine is not None:
        return Eligibility(
            attach_action="none",
            status="scheduled" if mine.status == CustomerProductStatus.SCHEDULED else "active",
            trialing=mine.status == CustomerProductStatus.TRIALING,
            canceling=mine.canceled_at is not None,
        )
    if product.is_one_off:
        action = "purchase"
    elif product.is_add_on:
        action = "activate"
    else:
        current = next(
            (
                cp
                for cp in held
                if cp.status in LIVE_PRODUCT_STATUSES and not cp.product.is_add_on and cp.product.group == product.group
            ),
            None,
        )
        if current is None:
            action = "activate"
        elif is_upgrade(current.product, product):  # the plan lifecycle's own rule, so both answers agree
            action = "upgrade"
        else:
            action = "downgrade"
    trial = product.has_trial and not tried and action != "purchase"
    return Eligibility(attach_action=action, status=None, trialing=False, canceling=False, trial_available=trial)
