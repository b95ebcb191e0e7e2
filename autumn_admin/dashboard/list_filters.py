"""The customers list's filters and sorts: what the URL may say, read into `ListFilters`, each bad value refused
with a message naming the filter (never guessed at), and the balance condition a balance filter asks for.

The queries that apply them are `customer_list`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import DecimalField, F, Q, Value
from django.utils import timezone

from billing.models import CustomerProductStatus, Feature, FeatureType

STATUS_FILTERS = {
    "active": ("Active", CustomerProductStatus.ACTIVE),
    "trialing": ("Trialing", CustomerProductStatus.TRIALING),
    "past_due": ("Past due", CustomerProductStatus.PAST_DUE),
    "cancelling": ("Cancelling", "cancelling"),
    "scheduled": ("Scheduled", CustomerProductStatus.SCHEDULED),
    "none": ("No product", None),
}
SORTS = {
    "-created": ("Newest first", ("-created_at", "-id")),
    "created": ("Oldest first", ("created_at", "id")),
    "name": ("Name A–Z", ("name", "customer_id")),
    "-name": ("Name Z–A", ("-name", "-customer_id")),
}
# Sorts by the chosen feature's balance (the `feature` filter names it).
FEATURE_SORTS = {
    "remaining": "Remaining, least first",
    "-remaining": "Remaining, most first",
    "usage": "Usage, least first",
    "-usage": "Usage, most first",
}
DEFAULT_SORT = "-created"
BALANCE_FILTERS = {
    "below": "Remaining below",
    "below_pct": "Remaining below % of granted",
    "overage": "In overage",
    "unlimited": "Unlimited",
}
YES_NO = {"yes": "Yes", "no": "No"}
MAX_QUANTITY = Decimal("1000000000000")
QUANTITY_PLACES = 6  # a balance's decimal places (billing.models.QUANTITY)
# The days a date filter may name: the list compares them as moments in the viewer's time zone, and the day
# after "created after" must still be a date (9999-12-31 has none).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9999, 12, 30)


@dataclass
class ListFilters:
    q: str = ""
    product: str = ""
    status: str = ""
    feature: str = ""
    balance: str = ""
    value: str = ""
    created_after: str = ""
    created_before: str = ""
    coupon: str = ""
    stripe: str = ""
    sort: str = DEFAULT_SORT
    errors: list[str] = field(default_factory=list)
    # The filters whose values are refused (their inputs are marked on the list's form).
    invalid: set[str] = field(default_factory=set)
    # Parsed values, set by `from_query` when valid.
    amount: Decimal | None = None
    after: datetime | None = None
    before: datetime | None = None
    feature_obj: Feature | None = None

    PARAMS = (
        "q",
        "product",
        "status",
        "feature",
        "balance",
        "value",
        "created_after",
        "created_before",
        "coupon",
        "stripe",
    )

    def refuse(self, name: str, message: str) -> None:
        """Refuse the value of the filter `name` with `message` (shown above the list, its input marked)."""
        self.errors.append(message)
        self.invalid.add(name)

    @classmethod
    def from_query(cls, params) -> ListFilters:
        """Read the list's filters from a query string. Each bad value adds a message to `errors`."""
        f = cls(**{name: params.get(name, "").strip()[:255] for name in cls.PARAMS})
        f.sort = params.get("sort", DEFAULT_SORT).strip() or DEFAULT_SORT
        nul = [name for name in cls.PARAMS if name not in ("q", "product") and "\x00" in getattr(f, name)]
        if nul:
            f.errors.append("Filters can't contain a NUL character.")
            f.invalid.update(nul)
            return f
        if f.status and f.status not in STATUS_FILTERS:
            f.refuse("status", f"Unknown plan status {f.status!r}: choose one of the list.")
        elif f.status == "none" and f.product:
            f.refuse("status", "“No product” can't be combined with a product: choose a plan status or no product.")
        for name, label in (("coupon", "Coupon"), ("stripe", "Stripe")):
            if getattr(f, name) and getattr(f, name) not in YES_NO:
                f.refuse(name, f"{label} must be yes or no.")
        for name, label in (("created_after", "Created after"), ("created_before", "Created before")):
            raw = getattr(f, name)
            if raw:
                try:
                    day = date.fromisoformat(raw)
                except ValueError:
                    f.refuse(name, f"{label} must be a date like 2026-12-31, not {raw!r}.")
                    continue
                if not FIRST_DAY <= day <= LAST_DAY:
                    f.refuse(name, f"{label} must be a date between {FIRST_DAY} and {LAST_DAY}, not {raw}.")
                    continue
                # The day in the viewer's time zone: after = from the end of that day, before = before its start.
                moment = datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())
                if name == "created_after":
                    f.after = moment + timedelta(days=1)
                else:
                    f.before = moment
        if f.feature:
            f.feature_obj = Feature.objects.filter(feature_id=f.feature).first()
            if f.feature_obj is None:
                f.refuse("feature", f"There is no feature {f.feature!r}.")
            elif f.feature_obj.type == FeatureType.BOOLEAN and (f.balance or f.sort.lstrip("-") in FEATURE_SORTS):
                boolean = f"{f.feature_obj.name} is a boolean feature: it has no balance to filter or sort by."
                f.refuse("feature", boolean)
        if f.balance:
            if f.balance not in BALANCE_FILTERS:
                f.refuse("balance", f"Unknown balance filter {f.balance!r}.")
            elif not f.feature:
                f.refuse("feature", "Choose the feature whose balance to filter by.")
            elif f.balance in ("below", "below_pct"):
                f.amount, wrong = _quantity(f.value)
                if f.amount is None:
                    f.refuse("value", f"{BALANCE_FILTERS[f.balance]} {wrong}, not {f.value!r}.")
                elif f.balance == "below_pct" and not 0 <= f.amount <= 100:
                    f.refuse("value", "A percentage of granted must be between 0 and 100.")
        if f.sort not in SORTS and f.sort not in _feature_sort_keys():
            f.refuse("sort", f"Unknown sort {f.sort!r}.")
            f.sort = DEFAULT_SORT
        elif f.sort in _feature_sort_keys() and not f.feature:
            f.refuse("sort", "Choose the feature to sort by.")
            f.sort = DEFAULT_SORT
        return f

    @property
    def sorted_by_feature(self) -> bool:
        return self.sort in FEATURE_SORTS and self.feature_obj is not None and not self.errors

    @property
    def shows_matched_balance(self) -> bool:
        """A balance filter names a feature: the list and the export show the balance it matched."""
        return self.feature_obj is not None and not self.errors and balance_condition(self) is not None

    @property
    def active(self) -> bool:
        return any(getattr(self, name) for name in self.PARAMS)

    def query(self, *, with_sort: bool = True) -> dict[str, str]:
        """The filters as query parameters (only those set)."""
        params = {name: getattr(self, name) for name in self.PARAMS if getattr(self, name)}
        if with_sort and self.sort != DEFAULT_SORT:
            params["sort"] = self.sort
        return params

    def describe(self) -> str:
        """The filters in words, for the jobs page and saved views."""
        parts = []
        if self.q:
            parts.append(f"search “{self.q}”")
        status = STATUS_FILTERS.get(self.status, (self.status,))[0]
        if self.product and self.status:
            parts.append(f"product {self.product} in status {status}")  # that product in that status
        elif self.product:
            parts.append(f"product {self.product}")
        elif self.status:
            parts.append(f"status {status}")
        if self.balance and self.feature:
            what = BALANCE_FILTERS.get(self.balance, self.balance)
            suffix = {"below": f" {self.value}", "below_pct": f" {self.value} %"}.get(self.balance, "")
            parts.append(f"{self.feature}: {what.lower()}{suffix}")
        if self.created_after:
            parts.append(f"created after {self.created_after}")
        if self.created_before:
            parts.append(f"created before {self.created_before}")
        if self.coupon:
            parts.append("has a coupon" if self.coupon == "yes" else "no coupon")
        if self.stripe:
            parts.append("linked to Stripe" if self.stripe == "yes" else "not linked to Stripe")
        return ", ".join(parts) or "all customers"


def _quantity(raw: str) -> tuple[Decimal | None, str]:
    """`raw` as a quantity a balance can hold (at most MAX_QUANTITY either way, QUANTITY_PLACES decimal
    places), or None and what is wrong with it. `1e-999999` or `1e999999` is a finite Decimal that PostgreSQL
    can't compare with."""
    try:
        amount = Decimal(raw)
    except (InvalidOperation, ValueError):
        return None, "needs a number"
    if not amount.is_finite():
        return None, "needs a number"
    if abs(amount) > MAX_QUANTITY:
        return None, f"needs a number between −{MAX_QUANTITY:,} and {MAX_QUANTITY:,}"
    exact = amount.quantize(Decimal(1).scaleb(-QUANTITY_PLACES))  # within the context's precision: ≤ 19 digits
    if exact != amount:
        return None, f"needs a number with at most {QUANTITY_PLACES} decimal places"
    return exact, ""


def _feature_sort_keys() -> set[str]:
    return set(FEATURE_SORTS)


def balance_condition(filters: ListFilters) -> Q | None:
    """The condition on one balance of the chosen feature that the balance filter asks for."""
    match filters.balance:
        case "below" if filters.amount is not None:
            return Q(unlimited=False, remaining__lt=filters.amount)
        case "below_pct" if filters.amount is not None:
            # remaining < pct % of granted, granted = allowance + adjustment, kept without a division
            return Q(unlimited=False) & Q(
                remaining__lt=(F("allowance") + F("adjustment")) * Value(filters.amount / 100, DecimalField())
            )
        case "overage":
            return Q(unlimited=False, remaining__lt=0)
        case "unlimited":
            return Q(unlimited=True)
    return None
