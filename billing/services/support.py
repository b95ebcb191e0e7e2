"""What a support agent does to a customer's balance from its row on the customer page: record usage (as an API
track would, through the one engine) and run a check (as balances.check would), each with an audit entry naming
who did it and why."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.engine import run as engine
from billing.engine.decide import CheckResult
from billing.engine.run import TrackResult
from billing.models import Feature
from billing.quantities import parse_quantity
from billing.services.track import balance_track
from customers.audit import Actor, AuditAction, audit_record
from customers.errors import ServiceError
from customers.models import Customer
from customers.validation import require_reason, validate_reason


@transaction.atomic
def usage_record(
    *, customer: Customer, feature: Feature, value, properties: dict | None = None, actor: Actor, reason: str
) -> TrackResult:
    """Record `value` of `feature` for the customer, exactly as balances.track does (the engine draws the balances
    down and writes the event), and audit it with `reason` in the same transaction."""
    reason = require_reason(reason)
    if properties is not None and not isinstance(properties, dict):
        raise ServiceError("Properties must be a JSON object.", code="invalid_input", field="properties")
    value = parse_quantity(value, field="value")
    result = balance_track(customer=customer, feature=feature, value=value, actor=actor, properties=properties)
    remaining = [b.remaining for b in result.balances]
    audit_record(
        actor=actor,
        action=AuditAction.USAGE_RECORD,
        customer=customer,
        target_type="event",
        target_id=result.event.pk,
        after={
            "feature": feature.feature_id,
            "value": value,
            **({"properties": properties} if properties else {}),
            "remaining": sum(remaining, Decimal(0)) if remaining else None,
        },
        reason=reason,
    )
    return result


@transaction.atomic
def balance_check_run(
    *, customer: Customer, feature: Feature, required_balance, actor: Actor, reason: str = ""
) -> CheckResult:
    """balances.check's answer (without send_event: nothing is tracked, no balance changes), with an audit entry
    that someone asked."""
    required = parse_quantity(required_balance, field="required_balance")
    reason = validate_reason(reason)
    result = engine.check(customer=customer, feature=feature, required=required, now=timezone.now())
    audit_record(
        actor=actor,
        action=AuditAction.BALANCE_CHECK_RUN,
        customer=customer,
        target_type="feature",
        target_id=feature.feature_id,
        after={"feature": feature.feature_id, "required_balance": required, "allowed": result.allowed},
        reason=reason,
    )
    return result
