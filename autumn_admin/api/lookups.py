"""Finding what a request names, within the environment of its key."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from autumn_admin.api.errors import ApiError
from billing.models import Entity, Feature, Product
from customers.models import Customer
from customers.paging import InvalidCursor, Page, keyset_page


def customers_of(request: HttpRequest) -> QuerySet[Customer]:
    """The live customers of the key's environment: all the API ever sees of customers."""
    return Customer.objects.alive().filter(env=request.api_key.env)


def find_customer(request: HttpRequest, customer_id: str) -> Customer | None:
    """The live customer with this id in the key's environment, or None."""
    return customers_of(request).filter(customer_id=customer_id).first()


def customer_or_404(request: HttpRequest, customer_id: str) -> Customer:
    """The live customer with this id in the key's environment. Deleted ones and the other
    environment's answer 404, exactly like ids that never existed."""
    customer = find_customer(request, customer_id)
    if customer is None:
        raise ApiError(404, f"Customer {customer_id} not found", "customer_not_found")
    return customer


def of_customers(request: HttpRequest, rows: QuerySet, customer_id: str | None) -> QuerySet:
    """The rows (events, invoices) of the live customers of the key's environment; of one of them when
    `customer_id` is given (a 404 when it is not found)."""
    rows = rows.filter(customer__env=request.api_key.env, customer__deleted_at__isnull=True)
    if customer_id is not None:
        rows = rows.filter(customer=customer_or_404(request, customer_id))
    return rows


def entity_or_404_of(customer: Customer, entity_id: str | None) -> Entity | None:
    """The customer's entity (not deleted) a check or track names, None when it names none; an id the customer
    has no entity of (another customer's, a deleted one's) answers 404, as Autumn's `entity_not_found`."""
    if entity_id is None:
        return None
    entity = Entity.objects.alive().filter(customer=customer, entity_id=entity_id).first()
    if entity is None:
        raise ApiError(404, f"Entity {entity_id} not found", "entity_not_found")
    return entity


def feature_or_404(feature_id: str) -> Feature:
    """A feature of the catalogue, archived or not. The catalogue is shared by both environments, and archiving
    (which a sandbox key may do) only hides a feature from new plans: the balances customers of either
    environment hold of it are still checked, tracked and edited (docs/security.md). A new grant of an archived
    feature is refused by `balance_create`, with its reason."""
    feature = Feature.objects.filter(feature_id=feature_id).first()
    if feature is None:
        raise ApiError(404, f"Feature {feature_id} not found", "feature_not_found")
    return feature


def product_or_404(product_id: str, version: int | None = None) -> Product:
    """A catalogue product (never another customer's custom one): the given version, or the newest."""
    products = Product.objects.filter(product_id=product_id, custom_for__isnull=True)
    if version is not None:
        product = products.filter(version=version).first()
    else:
        product = products.filter(archived=False).order_by("-version").first()
    if product is None:
        label = f"{product_id} (version {version})" if version is not None else product_id
        raise ApiError(404, f"Plan {label} not found", "product_not_found")
    return product


def page_of(qs: QuerySet, *, time_field: str, cursor: str, limit: int, ascending: bool = False) -> Page:
    """One page of `qs` in the keyset order of customers/paging.py; a cursor we never gave out is a 400."""
    try:
        return keyset_page(qs, time_field=time_field, cursor=cursor or None, limit=limit, ascending=ascending)
    except InvalidCursor:
        raise ApiError(
            400,
            "start_cursor is not a cursor this API gave out; pass next_cursor from the "
            'previous page, or "" for the first page.',
            "invalid_cursor",
        )
