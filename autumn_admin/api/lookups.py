"""Finding what a request names, within the environment of its key."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.http import HttpRequest

from autumn_admin.api.errors import ApiError
from billing.models import Feature, Product
from customers.models import Customer


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


def encode_cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types) -> tuple:
    """The values `encode_cursor` packed, checked against `types`; a 400 for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(type(v) is t for v, t in zip(values, types, strict=True))
    ):
        raise ApiError(
            400,
            "start_cursor is not a cursor this API gave out; pass next_cursor from the "
            'previous page, or "" for the first page.',
            "invalid_cursor",
        )
    return tuple(values)


def time_cursor(row_time: datetime, pk: int) -> str:
    """The next page starts after (row_time, pk) in the page's order."""
    return encode_cursor(row_time.isoformat(), pk)


def decode_time_cursor(cursor: str) -> tuple[datetime, int]:
    stamp, pk = decode_cursor(cursor, str, int)
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiError(400, "start_cursor is not a cursor this API gave out.", "invalid_cursor")
    return moment, pk
