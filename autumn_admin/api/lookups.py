"""Finding what a request names, within the environment of its key."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from autumn_admin.api.errors import ApiError
from billing.models import Feature, Product
from customers.models import Customer
from customers.paging import InvalidCursor, Page, keyset_page


def customer_or_404(request: HttpRequest, customer_id: str) -> Customer:
    """The live customer with this id in the key's environment. Deleted ones and the other
    environment's answer 404, exactly like ids that never existed."""
    customer = Customer.objects.alive().filter(env=request.api_key.env, customer_id=customer_id).first()
    if customer is None:
        raise ApiError(404, f"Customer {customer_id} not found", "customer_not_found")
    return customer


def feature_or_404(feature_id: str) -> Feature:
    feature = Feature.objects.filter(feature_id=feature_id, archived=False).first()
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
