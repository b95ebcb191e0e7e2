"""A customer in Autumn's shape, with its subscriptions, purchases, balances, flags and (expanded)
invoices and rewards; and loading customers with all that in a constant number of queries."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Prefetch

from billing.models import (
    HELD_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    CustomerReward,
    Entity,
)
from billing.quantities import to_number
from billing.shapes.balances import balance_or_flag, grouped_balances
from billing.shapes.invoices import invoice_json
from billing.shapes.units import ms
from customers.models import Customer

# A customer's products the API shows: the live ones (subscription_status "active") and the scheduled ones.
EXPANDED_INVOICES = 100

# --- loading ------------------------------------------------------------------------------------


def with_api_relations(customers):
    """A customer queryset with everything `customer_json` reads, in a constant number of queries."""
    products = (
        CustomerProduct.objects.filter(status__in=HELD_PRODUCT_STATUSES)
        .select_related("product")
        .prefetch_related("product__prices")
        .order_by("started_at", "id")
    )
    balances = (
        Balance.objects.select_related("feature", "customer_product__product")
        .prefetch_related("customer_product__product__prices")
        .order_by("id")
    )
    return customers.prefetch_related(
        Prefetch("customer_products", queryset=products, to_attr="api_products"),
        Prefetch("balances", queryset=balances, to_attr="api_balances"),
    )


def load_customer(customer: Customer) -> Customer:
    """Read the customer again with its products and balances (the view brought it current first:
    `billing.services.current`)."""
    return with_api_relations(Customer.objects.filter(pk=customer.pk)).get()


def load_customers(customers: list[Customer]) -> list[Customer]:
    """`load_customer` for a page of customers, in the page's order."""
    by_pk = {c.pk: c for c in with_api_relations(Customer.objects.filter(pk__in=[c.pk for c in customers]))}
    return [by_pk[c.pk] for c in customers if c.pk in by_pk]


# --- products and rewards -----------------------------------------------------------------------


def subscription_json(cp: CustomerProduct) -> dict:
    canceled = cp.canceled_at is not None
    return {
        "id": cp.stripe_subscription_id or f"cus_prod_{cp.pk}",
        "plan_id": cp.product.product_id,
        "auto_enable": cp.product.is_default,
        "add_on": cp.product.is_add_on,
        # Autumn's two states: trials and overdue subscriptions are active (see trial_ends_at, past_due).
        "status": "scheduled" if cp.status == CustomerProductStatus.SCHEDULED else "active",
        "past_due": cp.status == CustomerProductStatus.PAST_DUE,
        "canceled_at": ms(cp.canceled_at),
        "expires_at": ms(cp.ended_at or (cp.current_period_end if canceled else None)),
        "trial_ends_at": ms(cp.trial_ends_at),
        "started_at": ms(cp.started_at),
        "current_period_start": ms(cp.current_period_start),
        "current_period_end": ms(cp.current_period_end),
        "quantity": cp.quantity,
    }


def purchase_json(cp: CustomerProduct) -> dict:
    return {
        "plan_id": cp.product.product_id,
        "expires_at": ms(cp.ended_at),
        "started_at": ms(cp.started_at),
        "quantity": cp.quantity,
    }


def _row_fields(cp: CustomerProduct) -> dict:
    """What a row of subscriptions.list or purchases.list adds: whose it is. An entity's own plans are not built,
    so every row is the customer's own; a row was created when the plan started."""
    return {
        "customer_id": cp.customer.customer_id,
        "entity_id": None,
        "created_at": ms(cp.started_at),
        "scope": "customer",
    }


def subscription_row_json(cp: CustomerProduct) -> dict:
    """A row of subscriptions.list: the customer's subscription, which may also have expired."""
    row = subscription_json(cp) | _row_fields(cp)
    if cp.status == CustomerProductStatus.EXPIRED:
        row["status"] = "expired"
    return row


def purchase_row_json(cp: CustomerProduct) -> dict:
    """A row of purchases.list: a one-off purchase."""
    status = {CustomerProductStatus.EXPIRED: "expired", CustomerProductStatus.SCHEDULED: "scheduled"}
    return {
        "id": f"cus_prod_{cp.pk}",
        **purchase_json(cp),
        "status": status.get(cp.status, "active"),
        **_row_fields(cp),
    }


def rewards_json(customer: Customer) -> dict:
    applied = (
        CustomerReward.objects.filter(customer=customer, removed_at__isnull=True)
        .select_related("reward")
        .order_by("applied_at", "id")
    )
    return {
        "discounts": [
            {
                "id": cr.reward.reward_id,
                "name": cr.reward.name,
                "type": cr.reward.type,
                "discount_value": to_number(cr.reward.value),
                "duration_type": cr.reward.duration,
                "duration_value": cr.reward.duration_months,
                "currency": cr.reward.currency or None,
                "start": ms(cr.applied_at),
                "end": ms(cr.expires_at),
            }
            for cr in applied
        ]
    }


def entity_base_json(entity: Entity, customer: Customer) -> dict:
    """An entity as customers.get lists it (expand "entities"); every entity answer starts with it."""
    return {
        "id": entity.entity_id,
        "name": entity.name or None,
        "customer_id": customer.customer_id,
        "feature_id": entity.feature.feature_id,
        "created_at": ms(entity.created_at),
        "env": customer.env,
    }


# --- the customer -------------------------------------------------------------------------------


def customer_json(customer: Customer, *, expand: Iterable[str] = ()) -> dict:
    """A customer read by `load_customer` or `load_customers`, in the shape Autumn's clients require."""
    products = customer.api_products
    metered, flags = {}, {}
    for feature, group in grouped_balances(customer.api_balances).items():
        balance, flag = balance_or_flag(feature, group)
        if flag is not None:
            flags[feature.feature_id] = flag
        else:
            metered[feature.feature_id] = balance
    data = {
        "id": customer.customer_id,
        "name": customer.name or None,
        "email": customer.email or None,
        "created_at": ms(customer.created_at),
        "fingerprint": customer.fingerprint or None,
        "stripe_id": customer.stripe_id or None,
        "env": customer.env,
        "metadata": customer.metadata or {},
        "send_email_receipts": customer.send_email_receipts,
        "billing_controls": {},
        "subscriptions": [subscription_json(cp) for cp in products if not cp.product.is_one_off],
        "purchases": [purchase_json(cp) for cp in products if cp.product.is_one_off],
        "licenses": [],
        "balances": metered,
        "flags": flags,
    }
    if "invoices" in expand:
        invoices = customer.invoices.order_by("-created_at", "-id")[:EXPANDED_INVOICES]
        data["invoices"] = [invoice_json(i, customer.customer_id) for i in invoices]
    if "rewards" in expand:
        data["rewards"] = rewards_json(customer)
    if "entities" in expand:
        entities = Entity.objects.alive().filter(customer=customer).select_related("feature")
        data["entities"] = [entity_base_json(e, customer) for e in entities]
    return data
