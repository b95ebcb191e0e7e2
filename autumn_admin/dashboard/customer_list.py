"""The customers list of an environment: the queries its filters and sorts make, the search, each row's
products and status badge, and the capped count.

Every filter lives in the URL (so a view is a bookmark, a saved view and a bulk job's selection at once); what
it may say is `list_filters`, the bulk selection `selection`."""

from __future__ import annotations

from django.db import OperationalError, connections, transaction
from django.db.models import (
    BooleanField,
    Case,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import NullIf, Round

from autumn_admin.dashboard.list_filters import (
    BALANCE_FILTERS,
    DEFAULT_SORT,
    FEATURE_SORTS,
    SORTS,
    STATUS_FILTERS,
    YES_NO,
    ListFilters,
    balance_condition,
)
from billing.models import (
    HELD_PRODUCT_STATUSES,
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    CustomerReward,
    Feature,
    FeatureType,
    Product,
)
from customers.models import Customer

# What the list's filters may say, for the list's users that read them here.
__all__ = [
    "BALANCE_FILTERS",
    "DEFAULT_SORT",
    "FEATURE_SORTS",
    "SORTS",
    "STATUS_FILTERS",
    "YES_NO",
    "ListFilters",
    "balance_condition",
]


def _live_products_of(customer_pk_ref) -> QuerySet[CustomerProduct]:
    return CustomerProduct.objects.filter(customer=customer_pk_ref, status__in=LIVE_PRODUCT_STATUSES)


def _status_condition(status: str) -> Q:
    """A customer product in the plan status `status` as its customer's page names it (`status_label`): a
    live product whose cancellation is set is Cancelling, not Active, Trialing or Past due."""
    if status == "cancelling":
        return Q(status__in=LIVE_PRODUCT_STATUSES, canceled_at__isnull=False)
    if status in LIVE_PRODUCT_STATUSES:
        return Q(status=status, canceled_at__isnull=True)
    return Q(status=status)


def plan_products(filters: ListFilters) -> QuerySet[CustomerProduct] | None:
    """The customer products the Product and Plan status filters look for, of all customers: *that* product in
    *that* status when both are chosen (never the product in one row and the status in another, as a Scale
    past due beside an active add-on), a live product of the product alone, any product in the status alone.
    None when neither is chosen, or the status is "No product" (which holds no product to look for). The list,
    its count, the export, saved views and bulk jobs all select through `_matching`, which asks for one of
    these rows per customer; the few-match narrowing reads the same rows' customers."""
    status = STATUS_FILTERS[filters.status][1] if filters.status in STATUS_FILTERS else None
    if status is None:
        if not filters.product or filters.status:
            return None
        rows = CustomerProduct.objects.filter(status__in=LIVE_PRODUCT_STATUSES)
    else:
        rows = CustomerProduct.objects.filter(_status_condition(status))
    if filters.product:
        rows = rows.filter(product__product_id=filters.product)
    return rows


def _active_coupons() -> QuerySet[CustomerReward]:
    return CustomerReward.objects.filter(removed_at__isnull=True)


def _matching_balances(filters: ListFilters, condition: Q) -> QuerySet[Balance]:
    """The balances of the chosen feature that the balance filter's `condition` picks."""
    return Balance.objects.filter(condition, feature=filters.feature_obj)


def customer_search(env: str, filters: ListFilters) -> QuerySet[Customer]:
    """The alive customers of an environment matching the filters, sorted. Search is a
    case-insensitive substring of the id, name, email or fingerprint."""
    qs = _matching(env, filters)
    if filters.sorted_by_feature:
        return _sorted_by_feature(qs, filters)
    return qs.order_by(*SORTS[filters.sort][1])


def _matching(env: str, filters: ListFilters) -> QuerySet[Customer]:
    qs = Customer.objects.alive().filter(env=env)
    if filters.errors or "\x00" in filters.q or "\x00" in filters.product:
        return qs.none()  # no stored text has a NUL, and PostgreSQL refuses to search for one
    qs = qs.search(filters.q)
    products = plan_products(filters)
    if products is not None:
        qs = qs.filter(Exists(products.filter(customer=OuterRef("pk"))))
    elif filters.status == "none":
        # The kept flag finds the few candidates from its index; the check on the products keeps it exact.
        qs = qs.filter(has_live_product=False).filter(~Exists(_live_products_of(OuterRef("pk"))))
    if filters.after:
        qs = qs.filter(created_at__gte=filters.after)
    if filters.before:
        qs = qs.filter(created_at__lt=filters.before)
    if filters.coupon:
        has = Exists(_active_coupons().filter(customer=OuterRef("pk")))
        qs = qs.filter(has if filters.coupon == "yes" else ~has)
    if filters.stripe:
        qs = qs.exclude(stripe_id="") if filters.stripe == "yes" else qs.filter(stripe_id="")
    if filters.feature_obj is not None:
        condition = balance_condition(filters)
        if condition is not None:
            mine = _matching_balances(filters, condition).filter(customer=OuterRef("pk"))
            qs = qs.filter(Exists(mine))
            qs = _with_matched_balance(qs, mine)
    return qs


def _with_matched_balance(qs: QuerySet[Customer], mine: QuerySet[Balance]) -> QuerySet[Customer]:
    """Each customer's balance that the balance filter matched (the least remaining, if several do), as
    `matched_remaining`, `matched_granted`, `matched_pct` (remaining as a % of granted, None when nothing is
    granted) and `matched_unlimited`: the list's and the export's column showing why the row is there. Read in
    the rows' own query (a subquery per column), so it costs no query more."""
    granted = ExpressionWrapper(F("allowance") + F("adjustment"), output_field=DecimalField())
    first = mine.order_by("remaining", "id").annotate(
        granted_now=granted,
        pct=Round(ExpressionWrapper(F("remaining") * 100 / NullIf(granted, Value(0)), output_field=DecimalField()), 1),
    )
    return qs.annotate(
        matched_remaining=Subquery(first.values("remaining")[:1], output_field=DecimalField()),
        matched_granted=Subquery(first.values("granted_now")[:1], output_field=DecimalField()),
        matched_pct=Subquery(first.values("pct")[:1], output_field=DecimalField()),
        matched_unlimited=Subquery(first.values("unlimited")[:1], output_field=BooleanField()),
    )


NARROW_CAP = 2_000
# Plan statuses few customers hold (and "cancelling"): the list reads their customers' ids first.
FEW_MATCH_STATUSES = (CustomerProductStatus.PAST_DUE, CustomerProductStatus.TRIALING, CustomerProductStatus.SCHEDULED)


def _few_match_sets(filters: ListFilters) -> list[QuerySet]:
    """For each filter that only a few customers can match (a status other than active, a coupon, a balance
    in overage or unlimited), the ids of the customers it may pick, read from that filter's own small table
    or index: the same rows `_matching` asks to exist for each customer, across all customers."""
    sets: list[QuerySet] = []
    status = STATUS_FILTERS[filters.status][1] if filters.status in STATUS_FILTERS else None
    if status in ("cancelling", *FEW_MATCH_STATUSES):
        sets.append(plan_products(filters))  # the product too, if chosen: the one rule `_matching` applies
    if filters.coupon == "yes":
        sets.append(_active_coupons())
    if filters.feature_obj is not None and filters.balance in ("overage", "unlimited"):
        sets.append(_matching_balances(filters, balance_condition(filters)))
    return [s.order_by().values_list("customer_id", flat=True) for s in sets]


def narrowed(qs: QuerySet[Customer], filters: ListFilters) -> QuerySet[Customer]:
    """`qs` restricted to the customers that every few-match filter may pick, when there are at most NARROW_CAP of
    them: their ids are read first (one query, the intersection of the filters' small sets) and the list
    reads only those customers. Without it PostgreSQL walks the whole environment's customers to find the
    one in thousands that matches two such filters at once (past due and a coupon: 250 ms at a million
    customers). The ids only narrow: every filter still applies to them, so the rows are those of `qs`."""
    if filters.errors:
        return qs
    sets = _few_match_sets(filters)
    if not sets:
        return qs
    ids = sets[0] if len(sets) == 1 else sets[0].intersection(*sets[1:])
    candidates = list(ids[: NARROW_CAP + 1])
    if len(candidates) > NARROW_CAP:
        return qs
    return qs.filter(pk__in=candidates)


def _plan_balances(feature: Feature) -> QuerySet[Balance]:
    """The balances a customer's plans give of `feature` with a figure to sort by (grants and unlimited
    ones aside): what the list's feature sorts order by and show."""
    return Balance.all_objects.filter(feature=feature, unlimited=False, customer_product__isnull=False)


def _feature_key(filters: ListFilters, prefix: str = ""):
    if filters.sort.lstrip("-") == "remaining":
        return F(f"{prefix}remaining")
    return F(f"{prefix}allowance") + F(f"{prefix}adjustment") - F(f"{prefix}remaining")


def _sorted_by_feature(qs: QuerySet[Customer], filters: ListFilters) -> QuerySet[Customer]:
    """Sorted by the plan's balance of the feature (remaining or usage; a customer whose plans give it twice
    sorts by the first of them in that order); customers without one come last, newest first, whichever the
    direction. The list's page reads the same order from an index (`feature_sorted_rows`); this one query
    gives it to the export and the bulk jobs."""
    desc = filters.sort.startswith("-")
    mine = (
        _plan_balances(filters.feature_obj)
        .filter(customer=OuterRef("pk"))
        .annotate(v=_feature_key(filters))
        .order_by(F("v").desc() if desc else F("v").asc(), "-id" if desc else "id")
    )
    qs = qs.annotate(
        feature_sort=Subquery(mine.values("v")[:1], output_field=DecimalField()),
        feature_balance=Subquery(mine.values("id")[:1]),
    )
    if desc:
        return qs.order_by(F("feature_sort").desc(nulls_last=True), F("feature_balance").desc(), "-id")
    return qs.order_by(F("feature_sort").asc(nulls_last=True), F("feature_balance").asc(), "-id")


def feature_sorted_rows(env: str, filters: ListFilters):
    """The rows of `customer_search` sorted by a feature from `offset`, read from the plan balances' index in order
    instead of computing every customer's figure first: `rows(offset, limit)`. Customers without a figure
    follow, newest first; the first page past those with one counts them (exactly) to know where to start."""
    qs = _matching(env, filters)
    feature = filters.feature_obj
    desc = filters.sort.startswith("-")
    key = _feature_key(filters, "plan__")
    with_figure = (
        qs.alias(
            plan=FilteredRelation(
                "balances",
                condition=Q(
                    balances__feature=feature, balances__unlimited=False, balances__customer_product__isnull=False
                ),
            )
        )
        .filter(plan__isnull=False)
        .annotate(feature_sort=ExpressionWrapper(key, output_field=DecimalField()), feature_balance=F("plan__id"))
    )
    # A customer whose plans give the feature twice: only the first of their balances in the sort's order.
    ahead = _plan_balances(feature).filter(customer=OuterRef("pk")).annotate(v=_feature_key(filters))
    if desc:
        ahead = ahead.filter(
            Q(v__gt=OuterRef("feature_sort")) | Q(v=OuterRef("feature_sort"), id__gt=OuterRef("feature_balance"))
        )
        ordered = with_figure.order_by(F("feature_sort").desc(), F("feature_balance").desc())
    else:
        ahead = ahead.filter(
            Q(v__lt=OuterRef("feature_sort")) | Q(v=OuterRef("feature_sort"), id__lt=OuterRef("feature_balance"))
        )
        ordered = with_figure.order_by(F("feature_sort").asc(), F("feature_balance").asc())
    ordered = ordered.filter(~Exists(ahead))
    without = (
        qs.filter(~Exists(_plan_balances(feature).filter(customer=OuterRef("pk"))))
        .annotate(feature_sort=Value(None, DecimalField()))
        .order_by("-id")
    )

    def rows(offset: int, limit: int) -> list[Customer]:
        found = list(with_live_products(ordered)[offset : offset + limit])
        if len(found) == limit:
            return found
        before = offset + len(found) if found or not offset else ordered.count()
        rest = with_live_products(without)[max(0, offset - before) : max(0, offset - before) + limit - len(found)]
        return found + list(rest)

    return rows


def feature_value(customer: Customer, filters: ListFilters):
    return getattr(customer, "feature_sort", None)


def with_live_products(qs: QuerySet[Customer]) -> QuerySet[Customer]:
    """Attach each customer's held products (live, and scheduled to start) as `held_products` (one query per
    page or chunk): a row shows the Pro it is listed for under "Pro, Scheduled". `live_products(customer)` are
    the live ones among them."""
    held = (
        CustomerProduct.objects.filter(status__in=HELD_PRODUCT_STATUSES)
        .select_related("product")
        .order_by(  # the live ones first: a row whose first product is scheduled has none live
            Case(When(status=CustomerProductStatus.SCHEDULED, then=Value(1)), default=Value(0)), "started_at", "id"
        )
    )
    return qs.prefetch_related(Prefetch("customer_products", queryset=held, to_attr="held_products"))


def live_products(customer: Customer) -> list[CustomerProduct]:
    """The live products among those `with_live_products` attached."""
    return [cp for cp in customer.held_products if cp.status in LIVE_PRODUCT_STATUSES]


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


def feature_choices() -> list[tuple[str, str]]:
    """(feature id, name) of the features with a balance (metered and credit systems)."""
    return list(
        Feature.objects.exclude(type=FeatureType.BOOLEAN)
        .filter(archived=False)
        .order_by("name")
        .values_list("feature_id", "name")
    )


def customer_status(live: list[CustomerProduct]) -> tuple[str, str]:
    """The one badge a customer shows (the page's header, the export's status): past due wins, then
    active, then trialing."""
    statuses = {cp.status for cp in live}
    for status in (CustomerProductStatus.PAST_DUE, CustomerProductStatus.ACTIVE, CustomerProductStatus.TRIALING):
        if status in statuses:
            return status, CustomerProductStatus(status).label
    return "none", "No product"


COUNT_CAP = 10_000
# A count that a page can't afford is given up: the page's own query and rendering take 30-40 ms at a million
# customers, and a count the page then doesn't show should not double that (docs/benchmarks.md).
COUNT_TIMEOUT_MS = 20


def capped_count(qs: QuerySet) -> tuple[int | None, bool]:
    """How many rows match, counted up to COUNT_CAP: (count, whether there are more). Counting a million
    rows on every page load costs a full scan; past the cap the list says "more than 10,000". On PostgreSQL
    the count may take COUNT_TIMEOUT_MS at most: a filter whose matches are costly to count answers
    (None, True), "many", and the bulk preview counts them exactly."""
    counting = qs.order_by().values("pk")[: COUNT_CAP + 1]
    alias = counting.db  # chosen now: inside the savepoint below the router would send it to the primary
    try:
        # SET LOCAL's time-out ends with the transaction or savepoint it was set in: this one is always
        # rolled back (it only read), so the time-out never outlives the count.
        with transaction.atomic(using=alias):
            with connections[alias].cursor() as cur:
                cur.execute("SELECT set_config('statement_timeout', %s, true)", [str(COUNT_TIMEOUT_MS)])
            n = counting.using(alias).count()
            transaction.set_rollback(True, using=alias)
    except OperationalError:  # cancelled by the time-out
        return None, True
    return min(n, COUNT_CAP), n > COUNT_CAP


def read_page(read, alias: str):
    """`read()` (a page's rows, their products, read from the database `alias`) on PostgreSQL without
    parallel workers: a page reads 51 rows, and starting workers costs more than they save (tens of ms on a
    busy server for a sparse filter's walk). The setting lives in a transaction or savepoint on that
    database that is rolled back once the rows are read, so it never outlives them."""
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cur:
            cur.execute("SELECT set_config('max_parallel_workers_per_gather', '0', true)")
        rows = read()
        transaction.set_rollback(True, using=alias)
    return rows
