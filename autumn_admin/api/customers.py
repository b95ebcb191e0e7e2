"""Customers: the RPC forms Autumn's clients call, and the older REST forms."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Query, Router

from autumn_admin.api import stripe
from autumn_admin.api.lookups import customer_or_404, customers_of, find_customer, page_of
from autumn_admin.api.schemas.common import ERRORS, STRIPE_ERRORS, CustomerId, SuccessOut
from autumn_admin.api.schemas.customers import (
    CustomerListOut,
    CustomerOut,
    DeleteCustomerParams,
    GetCustomerParams,
    GetOrCreateCustomerParams,
    ListCustomersParams,
    ListHeldParams,
    PurchaseListOut,
    SubscriptionListOut,
    UpdateCustomerParams,
)
from autumn_admin.api.schemas.legacy import (
    LegacyCreateCustomerParams,
    LegacyCustomerListOut,
    LegacyCustomerOut,
    LegacyUpdateCustomerParams,
)
from autumn_admin.api.serializers.legacy import legacy_customer_json
from billing.models import (
    HELD_PRODUCT_STATUSES,
    LIVE_PRODUCT_STATUSES,
    CustomerProduct,
    CustomerProductStatus,
    Price,
    Product,
)
from billing.services.current import customer_bring_current, customers_bring_current
from billing.shapes.customers import (
    customer_json,
    load_customer,
    load_customers,
    purchase_row_json,
    subscription_row_json,
)
from billing.stripe_io.client import StripeError
from billing.stripe_io.config import is_configured
from billing.stripe_io.customers import customer_delete_everywhere
from customers.errors import Conflict
from customers.models import TEXT_FIELDS, Customer
from customers.services.customers import customer_create, customer_update

router = Router(tags=["customers"])


def _get_or_create(request: HttpRequest, customer_id: str, params) -> Customer:
    """The customer with this id, created (on the default products) if new. An existing customer
    gets the details it lacks filled in from the request, and keeps the ones it has."""
    api_key = request.api_key
    existing = find_customer(request, customer_id)
    if existing is None:
        fields = {
            k: getattr(params, k)
            for k in (*TEXT_FIELDS, "metadata", "send_email_receipts")
            if getattr(params, k) is not None
        }
        try:
            return customer_create(env=api_key.env, customer_id=customer_id, actor=api_key, **fields)
        except Conflict:
            # Another request created it between our read and our insert: it is the one we want.
            existing = find_customer(request, customer_id)
            if existing is None:
                raise
    missing = {k: getattr(params, k) for k in TEXT_FIELDS if getattr(params, k) and not getattr(existing, k)}
    if missing:
        customer_update(customer=existing, actor=api_key, **missing)
    return existing


def _update(request: HttpRequest, customer_id: str, params, new_customer_id: str | None) -> Customer:
    """The customer with this id, changed by the fields the request sent (metadata merged: a key set to
    null is removed; null for the whole object clears it). Fields left out stay as they are."""
    customer = customer_or_404(request, customer_id)
    sent = params.model_fields_set
    fields = {k: getattr(params, k) for k in TEXT_FIELDS if k in sent}
    if "send_email_receipts" in sent and params.send_email_receipts is not None:
        fields["send_email_receipts"] = params.send_email_receipts
    metadata_merge = None
    if "metadata" in sent:
        if params.metadata is None:
            fields["metadata"] = {}
        else:
            metadata_merge = params.metadata
    return customer_update(
        customer=customer,
        actor=request.api_key,
        new_customer_id=new_customer_id,
        metadata_merge=metadata_merge,
        **fields,
    )


def _delete(request: HttpRequest, customer: Customer, delete_in_stripe: bool) -> dict:
    # Without Stripe connected for its environment, delete_in_stripe is moot: the customer goes here only.
    in_stripe = delete_in_stripe and bool(customer.stripe_id) and is_configured(customer.env)
    try:
        # All or nothing: if Stripe refuses, nothing is deleted here and the client can try again.
        customer_delete_everywhere(
            customer=customer,
            actor=request.api_key,
            reason="Also deleted in Stripe (delete_in_stripe)." if in_stripe else "",
            delete_in_stripe=in_stripe,
            all_or_nothing=True,
        )
    except StripeError as exc:
        raise stripe.stripe_failure(exc)
    return {"success": True}


def held_products(params) -> QuerySet[CustomerProduct]:
    """The customers' products that customers.list's subscription_status and plans ask for."""
    statuses = {
        "active": LIVE_PRODUCT_STATUSES,
        "scheduled": [CustomerProductStatus.SCHEDULED],
        None: HELD_PRODUCT_STATUSES,
    }[params.subscription_status]
    held = CustomerProduct.objects.filter(status__in=statuses)
    if params.plans:
        wanted = Q(pk__in=[])
        for plan in params.plans:
            one = Q(product__product_id=plan.id)
            if plan.versions:
                one &= Q(product__version__in=plan.versions)
            wanted |= one
        held = held.filter(wanted)
    return held


# What a status of subscriptions.list and purchases.list asks for. Trials and overdue plans read as active.
HELD_STATUSES = {
    "active": LIVE_PRODUCT_STATUSES,
    "scheduled": (CustomerProductStatus.SCHEDULED,),
    "past_due": (CustomerProductStatus.PAST_DUE,),
    "expired": (CustomerProductStatus.EXPIRED,),
}


def _one_off_products() -> QuerySet[Product]:
    """Products bought once: with prices, every one of them a fixed one-off price (Product.is_one_off)."""
    recurring = Price.objects.exclude(type=Price.Type.FIXED, interval="one_off")
    return Product.objects.filter(prices__isnull=False).exclude(prices__in=recurring).distinct()


def _held_page(request: HttpRequest, params: ListHeldParams, *, one_off: bool):
    """One page of the plans the key's environment's customers hold (subscriptions or one-off purchases),
    newest first. Period ends that have passed are applied first, as every customer read does."""
    rows = CustomerProduct.objects.filter(customer__env=request.api_key.env, customer__deleted_at__isnull=True)
    if params.customer_id is not None:
        rows = rows.filter(customer=customer_or_404(request, params.customer_id))
    one_offs = _one_off_products().values("pk")
    rows = rows.filter(product__in=one_offs) if one_off else rows.exclude(product__in=one_offs)
    statuses = params.statuses or ["active", "scheduled"]
    rows = rows.filter(status__in=[s for status in statuses for s in HELD_STATUSES[status]])
    if params.plan_id is not None:
        rows = rows.filter(product__product_id=params.plan_id)
    rows = rows.select_related("customer", "product").prefetch_related("product__prices")
    page = page_of(rows, time_field="started_at", cursor=params.start_cursor, limit=params.limit)
    if customers_bring_current(customers={cp.customer for cp in page.items}):
        page = page_of(rows, time_field="started_at", cursor=params.start_cursor, limit=params.limit)
    return page


# --- RPC forms (autumn-sdk, autumn-js) ----------------------------------------------------------


@router.post(
    "/subscriptions.list",
    response={200: SubscriptionListOut, **ERRORS},
    exclude_unset=True,
    operation_id="listSubscriptions",
    summary="List subscriptions",
)
def subscriptions_list(request, params: ListHeldParams):
    """The subscriptions of the key's environment's customers (or of `customer_id`), newest first; pass
    next_cursor as start_cursor for the next page."""
    page = _held_page(request, params, one_off=False)
    return {
        "list": [subscription_row_json(cp) for cp in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


@router.post(
    "/purchases.list",
    response={200: PurchaseListOut, **ERRORS},
    exclude_unset=True,
    operation_id="listPurchases",
    summary="List one-off purchases",
)
def purchases_list(request, params: ListHeldParams):
    """The one-off purchases of the key's environment's customers (or of `customer_id`), newest first; pass
    next_cursor as start_cursor for the next page."""
    page = _held_page(request, params, one_off=True)
    return {
        "list": [purchase_row_json(cp) for cp in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


@router.post(
    "/customers.get_or_create",
    response={200: CustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="getOrCreateCustomer",
    summary="Get or create a customer",
)
def customers_get_or_create(request, params: GetOrCreateCustomerParams):
    """Create the customer (on the default plans) if it doesn't exist, or return the existing one."""
    customer = _get_or_create(request, params.customer_id, params)
    customer_bring_current(customer=customer)
    return customer_json(load_customer(customer), expand=params.expand or ())


@router.post(
    "/customers.get",
    response={200: CustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="getCustomer",
    summary="Get a customer",
)
def customers_get(request, params: GetCustomerParams):
    customer = customer_or_404(request, params.customer_id)
    customer_bring_current(customer=customer)
    return customer_json(load_customer(customer), expand=params.expand or ())


@router.post(
    "/customers.list",
    response={200: CustomerListOut, **ERRORS},
    exclude_unset=True,
    operation_id="listCustomers",
    summary="List customers",
)
def customers_list(request, params: ListCustomersParams):
    """Newest first (or oldest with sort_order "asc"); pass next_cursor as start_cursor for the next page."""
    customers = customers_of(request)
    if params.search:
        customers = customers.search(params.search)
    if params.subscription_status or params.plans:
        customers = customers.filter(pk__in=held_products(params).values("customer_id"))
    page = page_of(
        customers,
        time_field="created_at",
        cursor=params.start_cursor,
        limit=params.limit,
        ascending=params.sort_order == "asc",
    )
    customers_bring_current(customers=page.items)
    return {"list": [customer_json(c) for c in load_customers(page.items)], "next_cursor": page.next_cursor}


@router.post(
    "/customers.update",
    response={200: CustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="updateCustomer",
    summary="Update a customer",
)
def customers_update(request, params: UpdateCustomerParams):
    """Change name, email, fingerprint, send_email_receipts, metadata (merged: a key set to null is
    removed) or the id itself (new_customer_id). Fields left out stay as they are."""
    customer = _update(request, params.customer_id, params, params.new_customer_id)
    customer_bring_current(customer=customer)
    return customer_json(load_customer(customer))


@router.post(
    "/customers.delete",
    response={200: SuccessOut, **STRIPE_ERRORS},
    operation_id="deleteCustomer",
    summary="Delete a customer",
)
def customers_delete(request, params: DeleteCustomerParams):
    """Soft delete: the customer disappears from the API (404) and lists; ops can restore it. With
    delete_in_stripe and Stripe connected, the Stripe customer is deleted first."""
    return _delete(request, customer_or_404(request, params.customer_id), params.delete_in_stripe)


# --- the documented update form and the REST forms of API 1.2 -----------------------------------


@router.post(
    "/customers/update",
    response={200: CustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="updateCustomerDocumented",
    summary="Update a customer (documented form)",
)
def customers_update_documented(request, params: UpdateCustomerParams):
    """`{"customer_id", "name", "email"}`, as in the documentation's cURL example."""
    return customers_update(request, params)


@router.get(
    "/customers",
    response={200: LegacyCustomerListOut, **ERRORS},
    exclude_unset=True,
    operation_id="listCustomersRest",
    summary="List customers (REST)",
)
def customers_list_rest(request, limit: int = Query(10, ge=1, le=100), offset: int = Query(0, ge=0, le=10**9)):
    customers = customers_of(request).order_by("-created_at", "-id")
    page = list(customers[offset : offset + limit])
    customers_bring_current(customers=page)
    return {
        "list": [legacy_customer_json(c) for c in load_customers(page)],
        "total": customers.count(),
        "limit": limit,
        "offset": offset,
    }


@router.post(
    "/customers",
    response={200: LegacyCustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="createCustomerRest",
    summary="Create a customer (REST)",
)
def customers_create_rest(request, params: LegacyCreateCustomerParams):
    """Creates the customer, or returns it if one with this id exists."""
    customer = _get_or_create(request, params.id, params)
    customer_bring_current(customer=customer)
    return legacy_customer_json(load_customer(customer))


@router.get(
    "/customers/{customer_id}",
    response={200: LegacyCustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="getCustomerRest",
    summary="Get a customer (REST)",
)
def customers_get_rest(request, customer_id: CustomerId):
    customer = customer_or_404(request, customer_id)
    customer_bring_current(customer=customer)
    return legacy_customer_json(load_customer(customer))


def _update_rest(request, customer_id: str, params: LegacyUpdateCustomerParams) -> dict:
    customer = _update(request, customer_id, params, params.id)
    customer_bring_current(customer=customer)
    return legacy_customer_json(load_customer(customer))


@router.post(
    "/customers/{customer_id}",
    response={200: LegacyCustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="updateCustomerRest",
    summary="Update a customer (REST)",
)
def customers_update_rest(request, customer_id: CustomerId, params: LegacyUpdateCustomerParams):
    """`id` in the body renames the customer; fields left out stay as they are."""
    return _update_rest(request, customer_id, params)


@router.patch(
    "/customers/{customer_id}",
    response={200: LegacyCustomerOut, **ERRORS},
    exclude_unset=True,
    operation_id="patchCustomerRest",
    summary="Update a customer (REST, PATCH)",
)
def customers_patch_rest(request, customer_id: CustomerId, params: LegacyUpdateCustomerParams):
    """The same as POST /v1/customers/{customer_id}."""
    return _update_rest(request, customer_id, params)


@router.delete(
    "/customers/{customer_id}",
    response={200: SuccessOut, **STRIPE_ERRORS},
    operation_id="deleteCustomerRest",
    summary="Delete a customer (REST)",
)
def customers_delete_rest(
    request, customer_id: CustomerId, delete_in_stripe: bool = Query(False, description="Also delete it in Stripe.")
):
    return _delete(request, customer_or_404(request, customer_id), delete_in_stripe)


# "/customers/update" is the documented update form for POST only: with any other method it is the
# customer whose id is "update", like any other id (its POST form is POST /v1/customers.update).
@router.get(
    "/customers/update", response={200: LegacyCustomerOut, **ERRORS}, exclude_unset=True, include_in_schema=False
)
def customer_named_update_get(request):
    return customers_get_rest(request, "update")


@router.patch(
    "/customers/update", response={200: LegacyCustomerOut, **ERRORS}, exclude_unset=True, include_in_schema=False
)
def customer_named_update_patch(request, params: LegacyUpdateCustomerParams):
    return _update_rest(request, "update", params)


@router.delete("/customers/update", response={200: SuccessOut, **STRIPE_ERRORS}, include_in_schema=False)
def customer_named_update_delete(request, delete_in_stripe: bool = Query(False)):
    return customers_delete_rest(request, "update", delete_in_stripe)
