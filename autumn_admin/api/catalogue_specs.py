"""Autumn's catalogue requests (features.*, plans.*, catalog.*) as the catalogue service's specs.

What Autumn offers and this server does not (tiered prices, rollovers, entities, licenses, variants,
other currencies, migrations) is refused by the schemas (`schemas.common.not_supported`), by the name of
the field that asks for it, never silently dropped; what depends on the values together is refused here.
"""

from __future__ import annotations

from decimal import Decimal

from autumn_admin.api.schemas.catalogue import (
    CreateFeatureParams,
    CreditCostIn,
    FeatureFieldsIn,
    FreeTrialIn,
    PlanFieldsIn,
    PlanItemIn,
    PlanPriceIn,
    UpdatePlanParams,
)
from billing.catalogue.specs import (
    CreditCostSpec,
    FeatureSpec,
    ItemSpec,
    PlanSpec,
    PriceSpec,
    TrialSpec,
    UsagePriceSpec,
    parse_amount,
    plan_currency,
)
from billing.models import FeatureType, Interval
from billing.quantities import parse_quantity
from customers.errors import ServiceError


def _refuse(where: str, message: str) -> ServiceError:
    return ServiceError(f"{where}: {message}", code="invalid_inputs", field=where, status=422)


def _quantity(raw, where: str) -> Decimal:
    try:
        return parse_quantity(raw, field=where, allow_negative=False)
    except ServiceError as exc:
        raise _refuse(where, exc.message.removeprefix(f"{where} ")) from None


def _whole(raw, where: str) -> int:
    if raw is None:
        return 1
    if isinstance(raw, float) and not raw.is_integer():
        raise _refuse(where, "must be a whole number")
    return int(raw)


# --- features ---------------------------------------------------------------------------------------


def _credit_cost(cost: CreditCostIn, where: str) -> CreditCostSpec:
    if cost.billing_units not in (None, 1):
        raise _refuse(f"{where}.billing_units", "credit costs are per single unit here")
    if cost.credit_cost is None:
        raise _refuse(f"{where}.credit_cost", "is required")
    return CreditCostSpec(cost.metered_feature_id, _quantity(cost.credit_cost, f"{where}.credit_cost"))


def _credit_schema(fields: FeatureFieldsIn, where: str) -> tuple[CreditCostSpec, ...]:
    at = f"{where}." if where else ""
    costs = [_credit_cost(c, f"{at}credit_schema[{n}]") for n, c in enumerate(fields.credit_schema or [])]
    return tuple(sorted(costs, key=lambda c: c.metered_feature_id))


def _unit_label(fields: FeatureFieldsIn) -> str | None:
    if fields.display is None:
        return None
    return (fields.display.singular or "")[:32]


def feature_spec(params: CreateFeatureParams, where: str = "") -> FeatureSpec:
    """The whole desired state of a feature (features.create, a feature of catalog.update)."""
    return FeatureSpec(
        feature_id=params.feature_id,
        name=params.name,
        type=params.type,
        consumable=params.type == FeatureType.CREDIT_SYSTEM
        or (params.type == FeatureType.METERED and params.consumable is not False),
        event_names=tuple(params.event_names or ()),
        credit_schema=_credit_schema(params, where),
        unit_label=_unit_label(params),
        archived=params.archived,
    )


def feature_changes(params: FeatureFieldsIn, current: FeatureSpec) -> dict:
    """The fields features.update sends, as changes to the feature's spec."""
    sent = params.model_fields_set
    changes: dict = {}
    if "name" in sent and params.name is not None:
        changes["name"] = params.name
    kind = params.type if "type" in sent and params.type is not None else current.type
    if kind != current.type:
        changes["type"] = kind
    if "consumable" in sent and params.consumable is not None or "type" in changes:
        consumable = params.consumable if params.consumable is not None else current.consumable
        changes["consumable"] = kind == FeatureType.CREDIT_SYSTEM or (kind == FeatureType.METERED and consumable)
    if "event_names" in sent and params.event_names is not None:
        changes["event_names"] = tuple(params.event_names)
    if "credit_schema" in sent and params.credit_schema is not None:
        changes["credit_schema"] = _credit_schema(params, "")
    if "display" in sent and params.display is not None:
        changes["unit_label"] = _unit_label(params)
    if "archived" in sent and params.archived is not None:
        changes["archived"] = params.archived
    if "new_feature_id" in sent and getattr(params, "new_feature_id", None):
        changes["new_feature_id"] = params.new_feature_id
    return changes


# --- plans ------------------------------------------------------------------------------------------


def _plan_price(price: PlanPriceIn, where: str, currency: str) -> PriceSpec:
    return PriceSpec(
        amount=parse_amount(price.amount, where=f"{where}.amount", currency=currency),
        interval=price.interval,
        interval_count=_whole(price.interval_count, f"{where}.interval_count"),
        currency=currency,
    )


def _reset_interval(interval: str) -> str:
    return Interval.LIFETIME if interval == "one_off" else interval


def _item(item: PlanItemIn, where: str, currency: str) -> ItemSpec:
    unlimited = bool(item.unlimited)
    included = Decimal(0) if unlimited or item.included is None else _quantity(item.included, f"{where}.included")
    reset = item.reset
    interval = _reset_interval(reset.interval) if reset else Interval.LIFETIME
    interval_count = _whole(reset.interval_count, f"{where}.reset.interval_count") if reset else 1
    usage_price = None
    usage_limit = None
    if item.price is not None:
        price, at = item.price, f"{where}.price"
        if price.billing_method not in (None, "usage_based"):
            raise _refuse(
                f"{at}.billing_method",
                "only usage_based prices (usage beyond the allowance, billed per unit) are offered here",
            )
        if price.amount is None:
            raise _refuse(f"{at}.amount", "is required")
        if price.interval is None:
            raise _refuse(f"{at}.interval", "is required")
        price_count = _whole(price.interval_count, f"{at}.interval_count")
        if reset is None:  # Autumn's reading: an item priced per month resets every month
            interval, interval_count = _reset_interval(price.interval), price_count
        usage_price = UsagePriceSpec(
            amount=parse_amount(price.amount, where=f"{at}.amount", currency=currency),
            billing_units=_quantity(1 if price.billing_units is None else price.billing_units, f"{at}.billing_units"),
            interval=price.interval,
            interval_count=price_count,
            currency=currency,
        )
        if price.max_purchase is not None:
            usage_limit = included + _quantity(price.max_purchase, f"{at}.max_purchase")
    return ItemSpec(
        feature_id=item.feature_id,
        included=included,
        unlimited=unlimited,
        interval=interval,
        interval_count=interval_count,
        usage_price=usage_price,
        usage_limit=usage_limit,
    )


def _trial(trial: FreeTrialIn | None, where: str) -> TrialSpec | None:
    """Autumn's free_trial: duration_length × duration_type (a month unless named), no card unless required."""
    if trial is None:
        return None
    if trial.on_end not in (None, "bill"):
        raise _refuse(f"{where}.on_end", "a trial ends by billing the plan here ('bill')")
    return TrialSpec(
        length=_whole(trial.duration_length, f"{where}.duration_length"),
        unit=trial.duration_type or "month",
        card_required=bool(trial.card_required),
    )


def _refuse_unoffered(params: PlanFieldsIn, where: str) -> None:
    at = f"{where}." if where else ""
    if isinstance(params, UpdatePlanParams):
        if params.all_versions:
            raise _refuse(f"{at}all_versions", "a change reaches the newest version only: older ones keep theirs")
        if params.new_plan_id and params.new_plan_id != params.plan_id:
            raise _refuse(f"{at}new_plan_id", "a plan's id can't change here")


def _items(params: PlanFieldsIn, where: str, currency: str) -> tuple[ItemSpec, ...]:
    at = f"{where}." if where else ""
    return tuple(_item(item, f"{at}items[{n}]", currency) for n, item in enumerate(params.items or []))


def plan_spec(params, where: str = "") -> PlanSpec:
    """The whole desired state of a plan (plans.create, a plan of catalog.update)."""
    _refuse_unoffered(params, where)
    at = f"{where}." if where else ""
    currency = plan_currency(params.plan_id)
    return PlanSpec(
        plan_id=params.plan_id,
        name=params.name,
        description=params.description,
        group=params.group or "",
        add_on=bool(params.add_on),
        auto_enable=bool(params.auto_enable),
        archived=params.archived,
        price=_plan_price(params.price, f"{at}price", currency) if params.price is not None else None,
        items=_items(params, where, currency),
        free_trial=_trial(params.free_trial, f"{at}free_trial"),
        force_version=bool(getattr(params, "force_version", False)),
        disable_version=bool(getattr(params, "disable_version", False)),
    )


def plan_changes(params: UpdatePlanParams) -> dict:
    """The fields plans.update sends, as changes to the plan's spec (price: null removes the price)."""
    _refuse_unoffered(params, "")
    sent = params.model_fields_set
    currency = plan_currency(params.plan_id)
    changes: dict = {}
    for name, attr in (("name", "name"), ("description", "description"), ("group", "group")):
        if name in sent and getattr(params, name) is not None:
            changes[attr] = getattr(params, name)
    for name, attr in (("add_on", "add_on"), ("auto_enable", "auto_enable"), ("archived", "archived")):
        if name in sent and getattr(params, name) is not None:
            changes[attr] = getattr(params, name)
    if "price" in sent:
        changes["price"] = _plan_price(params.price, "price", currency) if params.price is not None else None
    if "items" in sent and params.items is not None:
        changes["items"] = _items(params, "", currency)
    if "free_trial" in sent:  # free_trial: null removes the trial
        changes["free_trial"] = _trial(params.free_trial, "free_trial")
    changes["force_version"] = bool(params.force_version)
    changes["disable_version"] = bool(params.disable_version)
    return changes
