"""The customers list of an environment: its filters and sorts, the search, and each row's products
and status badge."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from billing.models import LIVE_PRODUCT_STATUSES, CustomerProduct, CustomerProductStatus, Product
from customers.models import Customer

STATUS_FILTERS = {
    "active": ("Active", CustomerProductStatus.ACTIVE),
    "trialing": ("Trialing", CustomerProductStatus.TRIALING),
    "past_due": ("Past due", CustomerProductStatus.PAST_DUE),
    "none": ("No product", None),
}
SORTS = {
    "-created": ("Newest first", ("-created_at", "-id")),
    "created": ("Oldest first", ("created_at", "id")),
    "name": ("Name A–Z", ("name", "customer_id")),
    "-name": ("Name Z–A", ("-name", "-customer_id")),
}
DEFAULT_SORT = "-created"


@dataclass
class ListFilters:
    q: str = ""
    product: str = ""
    status: str = ""
    sort: str = DEFAULT_SORT

    @classmethod
    def from_query(cls, params) -> ListFilters:
        """Unknown filter values are ignored rather than refused: the list still answers."""
        status = params.get("status", "")
        sort = params.get("sort", DEFAULT_SORT)
        return cls(
            q=params.get("q", "").strip()[:255],
            product=params.get("product", "").strip()[:255],
            status=status if status in STATUS_FILTERS else "",
            sort=sort if sort in SORTS else DEFAULT_SORT,
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.product or self.status)


def _live_products_of(customer_pk_ref) -> QuerySet[CustomerProduct]:
    return CustomerProduct.objects.filter(customer=customer_pk_ref, status__in=LIVE_PRODUCT_STATUSES)


def customer_search(env: str, filters: ListFilters) -> QuerySet[Customer]:
    """The alive customers of an environment matching the filters, sorted. Search is a
    case-insensitive substring of the id, name, email or fingerprint."""
    qs = Customer.objects.alive().filter(env=env)
    if "\x00" in filters.q or "\x00" in filters.product:
        return qs.none()  # no stored text has a NUL, and PostgreSQL refuses to search for one
    qs = qs.search(filters.q)
    if filters.product:
        qs = qs.filter(Exists(_live_products_of(OuterRef("pk")).filter(product__product_id=filters.product)))
    if filters.status:
        status = STATUS_FILTERS[filters.status][1]
        if status is None:
            qs = qs.filter(~Exists(_live_products_of(OuterRef("pk"))))
        else:
            qs = qs.filter(Exists(CustomerProduct.objects.filter(customer=OuterRef("pk"), status=status)))
    return qs.order_by(*SORTS[filters.sort][1])


def with_live_products(qs: QuerySet[Customer]) -> QuerySet[Customer]:
    """Attach each customer's live products as `live_products` (one query per page or chunk)."""
    live = CustomerProduct.objects.filter(status__in=LIVE_PRODUCT_STATUSES).select_related("product")
    return qs.prefetch_related(
        Prefetch("customer_products", queryset=live.order_by("started_at", "id"), to_attr="live_products")
    )


def product_choices() -> list[tuple[str, str]]:
    """(product id, name) of the catalogue's products, for the list's product filter."""
    seen: dict[str, str] = {}
    for product_id, name in (
        Product.objects.filter(custom_for__isnull=True)
        .order_by("name", "product_id", "-version")
        .values_list("product_id", "name")
    ):
        seen.setdefault(product_id, name)
    return sorted(seen.items(), key=lambda kv: kv[1].lower())


def customer_status(live: list[CustomerProduct]) -> tuple[str, str]:
    """The one badge a customer shows (the page's header, the export's status): past due wins, then
    active, then trialing."""
    statuses = {cp.status for cp in live}
    for status in (CustomerProductStatus.PAST_DUE, CustomerProductStatus.ACTIVE, CustomerProductStatus.TRIALING):
        if status in statuses:
            return status, CustomerProductStatus(status).label
    return "none", "No product"
