"""Who acted, and the audit row every state change writes in its own transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser

from customers.models import ApiKey, AuditEntry, Customer


class AuditAction(StrEnum):
    """What an audit entry records. Stored as the value ("balance.set"); add a member for a new kind of change."""

    CUSTOMER_CREATE = "customer.create"
    CUSTOMER_UPDATE = "customer.update"
    CUSTOMER_DELETE = "customer.delete"
    CUSTOMER_RESTORE = "customer.restore"
    CUSTOMER_PURGE = "customer.purge"
    CUSTOMER_STRIPE_LINK = "customer.stripe_link"
    CUSTOMER_STRIPE_UNLINK = "customer.stripe_unlink"
    API_KEY_CREATE = "api_key.create"
    API_KEY_REVOKE = "api_key.revoke"
    CUSTOMER_TOKEN_MINT = "customer_token.mint"
    CUSTOMER_TOKEN_REFRESH = "customer_token.refresh"
    CUSTOMER_TOKEN_REVOKE = "customer_token.revoke"
    BALANCE_CREATE = "balance.create"
    BALANCE_SET = "balance.set"
    BALANCE_ADD = "balance.add"
    BALANCE_RESET = "balance.reset"
    BALANCE_DELETE = "balance.delete"
    BALANCE_CHECK_RUN = "balance.check_run"  # a check run from the dashboard: changes nothing, recorded who asked
    USAGE_RECORD = "usage.record"  # usage recorded from the dashboard, with a reason
    ENTITY_CREATE = "entity.create"
    ENTITY_DELETE = "entity.delete"
    PRODUCT_ATTACH = "product.attach"
    PRODUCT_CUSTOMIZE = "product.customize"
    PRODUCT_UPDATE = "product.update"
    PRODUCT_SCHEDULE = "product.schedule"
    PRODUCT_STRIPE_LINK = "product.stripe_link"
    REWARD_APPLY = "reward.apply"
    REWARD_CREATE = "reward.create"
    REWARD_DELETE = "reward.delete"
    REWARD_UPDATE = "reward.update"
    REWARD_REMOVE = "reward.remove"
    REWARD_STRIPE_COUPON = "reward.stripe_coupon"
    REFERRAL_PROGRAM_CREATE = "referral_program.create"
    REFERRAL_PROGRAM_UPDATE = "referral_program.update"
    REFERRAL_PROGRAM_DELETE = "referral_program.delete"
    REFERRAL_CODE_CREATE = "referral_code.create"
    REFERRAL_REDEEM = "referral.redeem"
    REFERRAL_TRIGGER = "referral.trigger"
    INVOICE_CREATE = "invoice.create"
    INVOICE_UPDATE = "invoice.update"
    INVOICE_VOID = "invoice.void"
    INVOICE_REFUND = "invoice.refund"
    INVOICE_CREDIT = "invoice.credit"
    CHECKOUT_CREATE = "checkout.create"
    USAGE_REBUILD = "usage.rebuild"
    FEATURE_CREATE = "feature.create"
    FEATURE_UPDATE = "feature.update"
    FEATURE_DELETE = "feature.delete"
    PLAN_CREATE = "plan.create"
    PLAN_UPDATE = "plan.update"
    PLAN_VERSION = "plan.version"
    PLAN_DELETE = "plan.delete"
    BULK_JOB_START = "bulk_job.start"
    BULK_JOB_CANCEL = "bulk_job.cancel"
    ADMIN_CREATE = "admin.create"
    ADMIN_UPDATE = "admin.update"
    ADMIN_DELETE = "admin.delete"


SYSTEM = None
"""The actor of cron jobs and lazy resets."""

Actor = AbstractBaseUser | ApiKey | None


_JOB: ContextVar[tuple[int, str] | None] = ContextVar("audit_job", default=None)


@contextmanager
def audit_job(job_id: int, reason: str) -> Iterator[None]:
    """Within it, every audit entry names the bulk job that made the change, and carries the job's reason
    where the service itself takes none (Add Coupon): the single edit's services run unchanged."""
    token = _JOB.set((job_id, reason))
    try:
        yield
    finally:
        _JOB.reset(token)


def actor_label(actor: Actor) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, ApiKey):
        return f"API key {actor.name} ({actor.prefix}…)"
    return actor.get_username()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Whole numbers stay integers so the trail reads "800 → 1,240", not "800.000000".
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def audit_record(
    *,
    actor: Actor,
    action: AuditAction,
    customer: Customer | None = None,
    target_type: str = "",
    target_id: str = "",
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    env: str | None = None,
    customer_ref: str | None = None,
) -> AuditEntry:
    """Write one append-only audit entry. Call it inside the transaction of the change."""
    job = _JOB.get()
    if job is not None and actor is not SYSTEM:  # a lazy reset on the way is the system's, not the job's
        reason = reason or job[1]
    return AuditEntry.objects.create(
        job_id=job[0] if job is not None and actor is not SYSTEM else None,
        actor_user=actor if isinstance(actor, AbstractBaseUser) else None,
        actor_api_key=actor if isinstance(actor, ApiKey) else None,
        actor_label=actor_label(actor),
        action=action,
        env=env if env is not None else (customer.env if customer else ""),
        customer=customer,
        customer_ref=customer_ref if customer_ref is not None else (customer.customer_id if customer else ""),
        target_type=target_type,
        target_id=str(target_id),
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        reason=reason,
    )
