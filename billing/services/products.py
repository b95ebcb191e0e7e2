"""A customer's products: attaching one (replacing a plan of its group, carrying usage over), making a custom
version of one (Customize, with its stale-form check), and moving one on as its subscription does."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import (
    LIVE_PRODUCT_STATUSES,
    Balance,
    CustomerProduct,
    CustomerProductStatus,
    Feature,
    FeatureType,
    Interval,
    Product,
    ProductItem,
    UsageType,
)
from billing.plan_preview import period_end_of, same_plan_group
from billing.quantities import ZERO, parse_quantity
from billing.services.balances import first_reset, reset_if_due
from billing.services.entity_balances import plan_entity_balances_create
from billing.services.referrals import referral_checkout
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.formatting import format_qty
from customers.models import AuditEntry, Customer
from customers.stale import StaleForm, by_whom, last_change
from customers.validation import require_reason

# --- one change at a time --------------------------------------------------------------------------


def lock_customer_plans(customer_pk: int) -> None:
    """Take the customer's plan-change lock: every service that changes a customer's products takes it first.

    The customer's row, not its products: a customer with no live product (cancelled, no default plan) has no
    product row to lock, and two attaches would then both go ahead and leave two copies of one plan. After this
    lock come the customer's products, by id, then their balances, by id: one order everywhere, so two plan
    changes wait for each other and never deadlock. FOR NO KEY UPDATE, so inserting a row that refers to the
    customer (an event of a track, an audit entry) does not wait for a plan change; two plan changes do."""
    list(Customer.objects.select_for_update(no_key=True).filter(pk=customer_pk).values_list("pk", flat=True))


# --- attach -----------------------------------------------------------------------------------------


@transaction.atomic
def product_attach(
    *,
    customer: Customer,
    product: Product,
    actor: Actor,
    status: str = CustomerProductStatus.ACTIVE,
    quantity: int = 1,
    trial_ends_at: datetime | None = None,
    stripe_subscription_id: str = "",
    now: datetime | None = None,
    reason: str = "",
    replace: CustomerProduct | None = None,
) -> CustomerProduct:
    """Put a customer on a product and create its balances.

    A plan (not an add-on) replaces the customer's live plan of the same group; usage recorded on
    the old plan's balances is carried over to the new ones, so switching plans never forgets usage.

    `replace` swaps exactly that customer product (plan or add-on) for `product` in place, as a
    custom product does: status, quantity, billing period and reset dates stay as they were.
    """
    now = now or timezone.now()
    if product.custom_for_id and product.custom_for_id != customer.pk:
        raise ServiceError("That custom product belongs to another customer.", code="product_not_found", status=404)
    lock_customer_plans(customer.pk)
    live = CustomerProduct.objects.select_for_update().filter(customer=customer, status__in=LIVE_PRODUCT_STATUSES)
    live = list(live.select_related("product").order_by("id"))
    if any(cp.product_id == product.pk for cp in live):
        raise Conflict(f"{customer.customer_id} already has {product.name}.", code="product_already_attached")

    if replace is not None:
        inherit = _still_live(customer, live, replace)
        replaced = [inherit]
        status, quantity = inherit.status, inherit.quantity
        trial_ends_at, stripe_subscription_id = inherit.trial_ends_at, inherit.stripe_subscription_id
    else:
        inherit = None
        replaced = [cp for cp in live if same_plan_group(cp.product, product)]
    carried, kept_resets, earlier = _end_replaced(replaced, hand_over=inherit is not None, now=now)
    cp = _start(
        customer,
        product,
        status=status,
        quantity=quantity,
        trial_ends_at=trial_ends_at,
        stripe_subscription_id=stripe_subscription_id,
        inherit=inherit,
        now=now,
    )
    in_place = inherit is not None
    create_balances(
        cp, carried=carried, kept_resets=kept_resets if in_place else {}, earlier=earlier if in_place else {}, now=now
    )
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_ATTACH,
        customer=customer,
        target_type="product",
        target_id=product.product_id,
        before={"products": [old.product.product_id for old in replaced]} if replaced else None,
        after={"product": product.product_id, "version": product.version, "status": status},
        reason=reason,
    )
    if replace is None and status in (CustomerProductStatus.ACTIVE, CustomerProductStatus.TRIALING):
        referral_checkout(customer=customer, product=product, status=status, actor=actor, now=now)
    return cp


def _still_live(customer: Customer, live: list[CustomerProduct], replace: CustomerProduct) -> CustomerProduct:
    """`replace` as locked among the customer's live products, or Conflict when it has ended since."""
    for cp in live:
        if cp.pk == replace.pk:
            return cp
    raise Conflict(f"{replace.product.name} is no longer active for {customer.customer_id}.", code="product_not_active")


def _end_replaced(
    replaced: list[CustomerProduct], *, hand_over: bool, now: datetime
) -> tuple[dict[int, Decimal], dict[tuple[int, str, int], datetime | None], dict[int, list[int]]]:
    """Expire the replaced products and delete their balances (locked, due resets applied first).

    Returns the usage they recorded per feature pk, to carry over; their reset dates per (feature pk,
    interval, count), and the balances each continues and itself per feature pk (whose edits its
    "Last edits" show), for a replacement in place to keep. `hand_over`: their Stripe subscription now
    belongs to the replacement."""
    carried: dict[int | tuple[int, int], Decimal] = {}
    kept_resets: dict[tuple[int, str, int], datetime | None] = {}
    earlier: dict[int | tuple[int, int], list[int]] = {}
    if not replaced:
        return carried, kept_resets, earlier
    old_balances = Balance.objects.select_for_update().filter(customer_product__in=replaced)
    for old in old_balances.order_by("id"):
        reset_if_due(old, now)
        # An entity's balance carries its usage to the same entity's balance of the feature (keyed by both).
        key = old.feature_id if old.entity_id is None else (old.feature_id, old.entity_id)
        carried[key] = carried.get(key, ZERO) + old.usage
        kept_resets[(old.feature_id, old.interval, old.interval_count)] = old.next_reset_at
        earlier[key] = [*earlier.get(key, []), *old.earlier_ids, old.pk]
        old.delete()
    for cp in replaced:
        cp.status = CustomerProductStatus.EXPIRED
        cp.ended_at = now
        if hand_over:
            # The Stripe subscription now belongs to the replacement; webhooks must find only it.
            cp.stripe_subscription_id = ""
        cp.save(update_fields=["status", "ended_at", "stripe_subscription_id"])
    return carried, kept_resets, earlier


def _start(
    customer: Customer,
    product: Product,
    *,
    status: str,
    quantity: int,
    trial_ends_at: datetime | None,
    stripe_subscription_id: str,
    inherit: CustomerProduct | None,
    now: datetime,
) -> CustomerProduct:
    """The new customer product: starting now, for the product's first billing period, or in the place of
    `inherit`, whose start, billing period and cancellation it keeps."""
    if inherit is not None:
        started_at, canceled_at = inherit.started_at, inherit.canceled_at
        period_start, period_end = inherit.current_period_start, inherit.current_period_end
    else:
        # A trial is the first period: the first charge is at its end, as Stripe's trialing subscription has it.
        period_end = trial_ends_at or period_end_of(product, now)
        started_at, canceled_at = now, None
        period_start = now if period_end else None
    return CustomerProduct.objects.create(
        customer=customer,
        product=product,
        status=status,
        started_at=started_at,
        quantity=quantity,
        current_period_start=period_start,
        current_period_end=period_end,
        canceled_at=canceled_at,
        trial_ends_at=trial_ends_at,
        stripe_subscription_id=stripe_subscription_id,
        granted_free=inherit.granted_free if inherit is not None else False,
    )


def create_balances(
    cp: CustomerProduct,
    *,
    carried: dict[int | tuple[int, int], Decimal],
    kept_resets: dict[tuple[int, str, int], datetime | None],
    now: datetime,
    earlier: dict[int | tuple[int, int], list[int]] | None = None,
) -> None:
    """One balance per item of the product, for its quantity, less the usage `carried` over; reset dates from
    now, or those in `kept_resets` for the same feature and interval; continuing the balances in `earlier` of
    the same feature. A per-entity item gives each of the customer's entities its own balance instead
    (billing/services/entity_balances.py), each less its own usage carried over."""
    for item in cp.product.items.select_related("feature").order_by("id"):
        if item.entity_feature_id is not None:
            plan_entity_balances_create(
                cp, item, now=now, carried=carried, kept_resets=kept_resets, earlier=earlier or {}
            )
            continue
        feature = item.feature
        lifetime = item.interval == Interval.LIFETIME or feature.usage_type == UsageType.CONTINUOUS_USE
        allowance = ZERO if feature.type == FeatureType.BOOLEAN else item.included * cp.quantity
        remaining = allowance - carried.get(feature.pk, ZERO)
        if remaining < 0 and not item.overage_allowed:
            remaining = ZERO
        interval = Interval.LIFETIME if lifetime else item.interval
        next_reset_at = kept_resets.get(
            (feature.pk, interval, item.interval_count), first_reset(interval, item.interval_count, now)
        )
        Balance.objects.create(
            customer=cp.customer,
            feature=feature,
            customer_product=cp,
            allowance=allowance,
            adjustment=ZERO,
            remaining=remaining,
            unlimited=item.unlimited,
            overage_allowed=item.overage_allowed,
            usage_limit=item.usage_limit,
            interval=interval,
            interval_count=item.interval_count,
            next_reset_at=next_reset_at,
            earlier_ids=(earlier or {}).get(feature.pk, []),
        )


# --- customize --------------------------------------------------------------------------------------


def _item_snapshot(items) -> dict:
    return {
        item.feature.feature_id: ("unlimited" if item.unlimited else item.included)
        for item in sorted(items, key=lambda i: i.feature.feature_id)
    }


@transaction.atomic
def product_customize(
    *,
    customer: Customer,
    customer_product: CustomerProduct,
    items: list[dict],
    actor: Actor,
    reason: str,
    now: datetime | None = None,
    expected: dict | None = None,
) -> CustomerProduct:
    """Make a custom version of a customer's product, for this customer only, and put it in place.

    `items` lists the changes, one dict per feature: `{"feature": Feature, "included": quantity}`
    and optionally `unlimited`, `interval`, `interval_count`, `overage_allowed` (for a feature the
    product lacks). The custom product copies the prices and the other items. Its balances take
    the new allowances from now on; usage so far is carried over and reset dates stay as they were.
    This is the permanent alternative to a balance edit, which lasts only until the next reset.

    `expected` (the dashboard's form) holds what the form showed: `{"items": {feature_id:
    included or "unlimited"}, "balances": {balance pk: granted or "unlimited"}}`. If the product
    was replaced, its allowances or a balance's grant changed since, StaleForm is raised.
    """
    reason = require_reason(reason)
    now = now or timezone.now()
    lock_customer_plans(customer.pk)
    locked = (
        CustomerProduct.objects.select_for_update()
        .select_related("product")
        .filter(pk=customer_product.pk, customer=customer)
        .first()
    )
    if locked is None or locked.status not in LIVE_PRODUCT_STATUSES:
        if expected is not None and locked is not None:
            _customize_replaced(customer, locked)
        raise Conflict("That product is no longer active for this customer.", code="product_not_active")
    source = locked.product
    base = (source.base_product or source) if source.is_custom else source

    current = {item.feature_id: item for item in source.items.select_related("feature")}
    if expected is not None:
        _check_customize_expected(customer, locked, current.values(), expected)
    new_items = {fid: _copy_item(item) for fid, item in current.items()}
    _apply_item_changes(new_items, items)
    before, after = _item_snapshot(current.values()), _item_snapshot(new_items.values())
    if before == after:
        raise ServiceError(
            f"Nothing to change: these are {source.name}'s allowances already.", code="invalid_input", field="items"
        )
    custom = _create_custom_product(customer, source=source, base=base, items=list(new_items.values()), now=now)
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_CUSTOMIZE,
        customer=customer,
        target_type="product",
        target_id=base.product_id,
        before={"product": source.product_id, "items": before},
        after={"product": custom.product_id, "version": custom.version, "custom": True, "items": after},
        reason=reason,
    )
    return product_attach(customer=customer, product=custom, actor=actor, now=now, reason=reason, replace=locked)


def _copy_item(item: ProductItem) -> ProductItem:
    """An unsaved copy of a product's item, for another product."""
    return ProductItem(
        feature=item.feature,
        included=item.included,
        unlimited=item.unlimited,
        interval=item.interval,
        interval_count=item.interval_count,
        overage_allowed=item.overage_allowed,
        usage_limit=item.usage_limit,
    )


def _apply_item_changes(new_items: dict[int, ProductItem], changes: list[dict]) -> None:
    """Give the items (by feature pk) the allowances of `changes`, adding an item for a feature they lack."""
    seen: set[int] = set()
    for change in changes:
        feature = change.get("feature")
        if not isinstance(feature, Feature) or feature.archived:
            raise ServiceError("Choose a feature.", code="invalid_input", field="feature")
        if feature.pk in seen:
            raise ServiceError(f"{feature.name} is listed twice.", code="invalid_input", field="feature")
        seen.add(feature.pk)
        unlimited = bool(change.get("unlimited", False))
        included = ZERO
        if feature.type != FeatureType.BOOLEAN and not unlimited:
            included = parse_quantity(change.get("included"), field="included", allow_negative=False)
        item = new_items.get(feature.pk)
        if item is None:
            item = new_items[feature.pk] = _new_item(feature, change)
        item.included = included
        item.unlimited = unlimited


def _new_item(feature: Feature, change: dict) -> ProductItem:
    """The item of a feature the product lacks: resetting monthly, unless it is on/off or allocated, or the change
    says how."""
    lifetime = feature.type == FeatureType.BOOLEAN or feature.usage_type == UsageType.CONTINUOUS_USE
    interval = change.get("interval") or (Interval.LIFETIME if lifetime else Interval.MONTH)
    if interval not in Interval.values:
        raise ServiceError(f"Unknown reset interval {interval!r}.", code="invalid_input", field="interval")
    return ProductItem(
        feature=feature,
        interval=interval,
        interval_count=int(change.get("interval_count") or 1),
        overage_allowed=bool(change.get("overage_allowed", False)),
    )


def _create_custom_product(
    customer: Customer, *, source: Product, base: Product, items: list[ProductItem], now: datetime
) -> Product:
    """The customer's next version of `base`, with the prices of `source` and these items."""
    taken = Product.objects.filter(custom_for=customer, product_id=base.product_id).values_list("version", flat=True)
    version = max([base.version - 1, *taken]) + 1
    custom = Product.objects.create(
        product_id=base.product_id,
        name=base.name,
        version=version,
        group=source.group,
        is_add_on=source.is_add_on,
        is_default=False,
        custom_for=customer,
        base_product=base,
        created_at=now,
        trial_length=source.trial_length,
        trial_unit=source.trial_unit,
        trial_card_required=source.trial_card_required,
    )
    for price in source.prices.all():
        price.pk = None
        price.product = custom
        price.save()
    for item in items:
        item.product = custom
    ProductItem.objects.bulk_create(items)
    return custom


def _customize_replaced(customer: Customer, cp: CustomerProduct) -> None:
    """Refuse a Customize form whose product was replaced or ended since it was opened, saying by whom."""
    who = by_whom(last_change(customer.audit_entries.filter(action__startswith="product."), lambda e: True))
    raise StaleForm(
        f"{cp.product.name} was replaced or ended since you opened this form{who}. "
        "Reopen Customize from the customer page.",
        code="product_not_active",
    )


def _shown(value) -> str:
    return "unlimited" if value == "unlimited" else format_qty(value)


def _check_customize_expected(customer: Customer, cp: CustomerProduct, items, expected: dict) -> None:
    """Refuse a custom product built on allowances or grants that changed since the form showed them.

    The product and its balances are locked, so a concurrent balance edit waits or is seen here.
    Tracked usage is no conflict: it is carried over to the custom product as it is at this moment.
    """
    changes = _item_edits(cp, items, expected.get("items", {})) + _balance_edits(cp, expected.get("balances", {}))
    if changes:
        raise StaleForm(
            f"{cp.product.name} changed since you opened this form: {'; '.join(changes)}. "
            "Check the new figures and try again.",
            field="items",
        )


def _item_edits(cp: CustomerProduct, items, seen_items: dict) -> list[str]:
    """How the product's allowances (`items`) differ from those the form showed."""
    changes = []
    now_items = _item_snapshot(items)
    names = {item.feature.feature_id: item.feature.name for item in items}
    names.update(Feature.objects.filter(feature_id__in=set(seen_items) - set(names)).values_list("feature_id", "name"))
    for fid in sorted(set(now_items) | set(seen_items)):
        seen, now = seen_items.get(fid), now_items.get(fid)
        if seen == now:
            continue
        if now is None:
            changes.append(f"{names.get(fid, fid)} is no longer part of {cp.product.name}")
        elif seen is None:
            changes.append(f"{cp.product.name} now includes {names.get(fid, fid)} ({_shown(now)})")
        else:
            changes.append(f"{names.get(fid, fid)} now has an allowance of {_shown(now)} (was {_shown(seen)})")
    return changes


def _balance_edits(cp: CustomerProduct, seen_balances: dict) -> list[str]:
    """How the product's balances (locked here) differ in their grants from those the form showed, and by whom."""
    changes = []
    balances = {
        b.pk: b
        for b in Balance.objects.select_for_update()
        .select_related("feature")
        .filter(customer_product=cp)
        .order_by("id")
    }
    for pk in sorted(set(balances) | set(seen_balances)):
        balance = balances.get(pk)
        now = None if balance is None else ("unlimited" if balance.unlimited else balance.granted)
        if now == seen_balances.get(pk):
            continue
        edits = AuditEntry.objects.filter(target_type="balance", target_id=str(pk), action__startswith="balance.")
        who = by_whom(last_change(edits, lambda e: True))
        if balance is None:
            changes.append(f"a balance of {cp.product.name} was removed{who}")
        elif pk not in seen_balances:
            changes.append(f"{balance.feature.name} got a new balance{who}, granted {_shown(now)}")
        else:
            changes.append(
                f"the {balance.feature.name} balance was edited{who}: granted is now {_shown(now)}"
                f" (was {_shown(seen_balances[pk])})"
            )
    return changes
