"""State changes of customers. Each takes the actor and writes its audit entry in its transaction."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import CUSTOMER_ID_MAX_LENGTH, CUSTOMER_ID_PATTERN, ApiKey, Customer, Env
from customers.signals import customer_created, customer_details_changed
from customers.stale import MISSING, StaleForm, by_whom, last_change, quoted

EDITABLE_FIELDS = ("name", "email", "fingerprint", "metadata", "send_email_receipts")
# The limits of what a customer may hold, the same for the dashboard and the API (both come here).
TEXT_LIMITS = {"name": 255, "email": 320, "fingerprint": 255}
METADATA_MAX_CHARS = 65536  # the whole object, written as JSON
METADATA_KEY_MAX_LENGTH = 255
METADATA_MAX_DEPTH = 32  # objects and lists within one another
REASON_MAX_LENGTH = 500  # a reason kept in the audit trail
_ID_RE = re.compile(CUSTOMER_ID_PATTERN)


def validate_customer_id(value, *, field: str = "id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("A customer id is required.", code="invalid_input", field=field)
    value = value.strip()
    if len(value) > CUSTOMER_ID_MAX_LENGTH:
        raise ServiceError(
            f"A customer id may be at most {CUSTOMER_ID_MAX_LENGTH} characters.", code="invalid_input", field=field
        )
    if not _ID_RE.match(value):
        raise ServiceError(
            "A customer id may contain only letters, digits, '_' and '-'.", code="invalid_input", field=field
        )
    return value


def _depth(value) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def validate_metadata(value, *, field: str = "metadata") -> dict:
    """A customer's metadata as it may be stored: an object with text keys, within the limits above."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ServiceError("metadata must be an object with text keys.", code="invalid_input", field=field)
    for key in value:
        if len(key) > METADATA_KEY_MAX_LENGTH:
            raise ServiceError(
                f"metadata keys may be at most {METADATA_KEY_MAX_LENGTH} characters; {key[:40]!r}… has {len(key):,}.",
                code="invalid_input",
                field=field,
            )
    if _depth(value) > METADATA_MAX_DEPTH:
        raise ServiceError(
            f"metadata may be nested at most {METADATA_MAX_DEPTH} levels deep.", code="invalid_input", field=field
        )
    size = len(json.dumps(value, default=str))
    if size > METADATA_MAX_CHARS:
        raise ServiceError(
            f"metadata may be at most {METADATA_MAX_CHARS:,} characters as JSON; this is {size:,}.",
            code="invalid_input",
            field=field,
        )
    return value


def validate_reason(reason, *, required: bool = False) -> str:
    """A reason for the audit trail: text of at most REASON_MAX_LENGTH characters, perhaps required."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if required and not reason:
        raise ServiceError("A reason is required.", code="invalid_input", field="reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise ServiceError(
            f"A reason may be at most {REASON_MAX_LENGTH} characters; this one has {len(reason):,}.",
            code="invalid_input",
            field="reason",
        )
    return reason


def _clean_fields(fields: dict) -> dict:
    clean = {}
    for key, value in fields.items():
        if key not in EDITABLE_FIELDS:
            raise ServiceError(f"{key} can't be changed.", code="invalid_input", field=key)
        if key in TEXT_LIMITS:
            value = "" if value is None else value
            if not isinstance(value, str):
                raise ServiceError(f"{key} must be text.", code="invalid_input", field=key)
            value = value.strip()
            if len(value) > TEXT_LIMITS[key]:
                raise ServiceError(
                    f"{key} may be at most {TEXT_LIMITS[key]} characters.", code="invalid_input", field=key
                )
            if key == "email" and value:
                try:
                    validate_email(value)
                except ValidationError:
                    raise ServiceError(f"{value!r} is not a valid email address.", code="invalid_input", field="email")
        elif key == "metadata":
            value = validate_metadata({} if value is None else value)
        elif key == "send_email_receipts" and not isinstance(value, bool):
            raise ServiceError("send_email_receipts must be true or false.", code="invalid_input", field=key)
        clean[key] = value
    return clean


def _snapshot(customer: Customer, keys) -> dict:
    return {k: getattr(customer, "customer_id" if k == "id" else k) for k in keys}


@transaction.atomic
def customer_create(*, env: str, customer_id: str, actor: Actor, attach_defaults: bool = True, **fields) -> Customer:
    """Create a customer and put it on the default (free) products."""
    if env not in Env.values:
        raise ServiceError(f"Unknown environment {env!r}.", code="invalid_input", field="env")
    customer_id = validate_customer_id(customer_id)
    clean = _clean_fields(fields)
    if Customer.objects.alive().filter(env=env, customer_id=customer_id).exists():
        raise Conflict(f"A customer with id {customer_id!r} already exists.", code="duplicate_customer_id", field="id")
    try:
        with transaction.atomic():
            customer = Customer.objects.create(env=env, customer_id=customer_id, **clean)
    except IntegrityError:
        raise Conflict(f"A customer with id {customer_id!r} already exists.", code="duplicate_customer_id", field="id")
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_CREATE,
        customer=customer,
        target_type="customer",
        target_id=customer_id,
        after=_snapshot(customer, ["id", *clean]),
    )
    customer_created.send(sender=Customer, customer=customer, actor=actor, with_defaults=attach_defaults)
    return customer


@transaction.atomic
def customer_update(
    *,
    customer: Customer,
    actor: Actor,
    new_customer_id: str | None = None,
    metadata_merge: dict | None = None,
    reason: str = "",
    expected: dict | None = None,
    **fields,
) -> Customer:
    """Change a customer's details. `metadata_merge` merges keys, a None value deleting its key.

    `expected` (the dashboard's forms) holds the values the form showed, per field ("id", "name",
    …, "metadata": the whole dict): a field, or a merged metadata key, that changed since is
    refused with StaleForm. The API sends none: last write wins there.
    """
    reason = validate_reason(reason)
    clean = _clean_fields(fields)
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if expected:
        _check_expected(locked, expected, fields=clean, new_customer_id=new_customer_id, metadata_merge=metadata_merge)
    if metadata_merge is not None:
        merged = dict(locked.metadata or {})
        for key, value in _clean_fields({"metadata": metadata_merge})["metadata"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        clean["metadata"] = validate_metadata(merged)  # merges may not grow it past the limits either
    if new_customer_id is not None:
        new_id = validate_customer_id(new_customer_id, field="new_customer_id")
        if new_id != locked.customer_id:
            taken = Customer.objects.alive().filter(env=locked.env, customer_id=new_id).exclude(pk=locked.pk)
            if taken.exists():
                raise Conflict(
                    f"A customer with id {new_id!r} already exists.",
                    code="duplicate_customer_id",
                    field="new_customer_id",
                )
            clean["customer_id"] = new_id
    changed = {k: v for k, v in clean.items() if getattr(locked, k) != v}
    if not changed:
        return locked
    before = {("id" if k == "customer_id" else k): getattr(locked, k) for k in changed}
    for key, value in changed.items():
        setattr(locked, key, value)
    try:
        with transaction.atomic():
            locked.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise Conflict("That customer id is already taken.", code="duplicate_customer_id", field="new_customer_id")
    after = {("id" if k == "customer_id" else k): v for k, v in changed.items()}
    entry = audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_UPDATE,
        customer=locked,
        target_type="customer",
        target_id=locked.customer_id,
        before=before,
        after=after,
        reason=reason,
    )
    customer_details_changed.send(sender=Customer, customer=locked, audit_entry=entry, fields=frozenset(changed))
    customer.__dict__.update({k: getattr(locked, k) for k in [*changed, "updated_at"]})
    return locked


def _check_expected(locked: Customer, expected: dict, *, fields: dict, new_customer_id, metadata_merge) -> None:
    """Refuse a change over a value that changed since the form showed it (the row is locked)."""
    updates = locked.audit_entries.filter(action=AuditAction.CUSTOMER_UPDATE)
    wanted = {**fields, **({"id": new_customer_id} if new_customer_id is not None else {})}
    for field, seen in expected.items():
        if field == "metadata" or field not in wanted:
            continue
        now = locked.customer_id if field == "id" else getattr(locked, field)
        if now != seen and now != wanted[field]:
            who = by_whom(last_change(updates, lambda e, f=field: f in (e.after or {})))
            label = "ID" if field == "id" else field.replace("_", " ")
            raise StaleForm(
                f"The {label} changed since you opened it{who}: it is now {quoted(now)}. "
                "Check it and update again to replace it.",
                field=field,
            )
    if "metadata" not in expected or not metadata_merge:
        return
    seen_all, stored = expected["metadata"] or {}, locked.metadata or {}
    changes = []
    for key, value in metadata_merge.items():
        seen, now = seen_all.get(key, MISSING), stored.get(key, MISSING)
        if now == seen or now == (MISSING if value is None else value):
            continue

        def touched(entry, key=key) -> bool:
            before, after = (entry.before or {}).get("metadata"), (entry.after or {}).get("metadata")
            return isinstance(after, dict) and (before or {}).get(key, MISSING) != after.get(key, MISSING)

        who = by_whom(last_change(updates, touched))
        if now is MISSING:
            changes.append(f"“{key}” was removed{who}")
        elif seen is MISSING:
            changes.append(f"“{key}” was added as {quoted(now)}{who}")
        else:
            changes.append(f"“{key}” is now {quoted(now)}{who}")
    if changes:
        raise StaleForm(
            f"Metadata changed since you opened it: {'; '.join(changes)}. "
            "Check it and update again to keep your values.",
            field="metadata",
        )


@transaction.atomic
def customer_delete(*, customer: Customer, actor: Actor, now: datetime | None = None, reason: str = "") -> Customer:
    """Soft delete: the customer leaves lists and the API; ops can restore it. Stripe is not touched."""
    reason = validate_reason(reason)
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.deleted_at is not None:
        return locked
    locked.deleted_at = now or timezone.now()
    locked.deleted_by = actor if getattr(actor, "is_authenticated", False) else None
    locked.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_DELETE,
        customer=locked,
        target_type="customer",
        target_id=locked.customer_id,
        reason=reason,
    )
    customer.deleted_at = locked.deleted_at
    return locked


@transaction.atomic
def customer_stripe_link(
    *, customer: Customer, stripe_id: str, actor: Actor, expected: str | None = None, reason: str = ""
) -> Customer:
    """Link the customer to a Stripe customer, or unlink it with `stripe_id=""`.

    With `expected`, the change happens only while the current link is that value, so a late
    `customer.deleted` webhook or a concurrent link never overwrites a newer one.
    """
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if (expected is not None and locked.stripe_id != expected) or locked.stripe_id == stripe_id:
        customer.stripe_id = locked.stripe_id
        return locked
    before = locked.stripe_id
    locked.stripe_id = stripe_id
    locked.save(update_fields=["stripe_id", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_STRIPE_LINK if stripe_id else AuditAction.CUSTOMER_STRIPE_UNLINK,
        customer=locked,
        target_type="customer",
        target_id=locked.customer_id,
        before={"stripe_id": before},
        after={"stripe_id": stripe_id},
        reason=reason,
    )
    customer.stripe_id = stripe_id
    return locked


@transaction.atomic
def customer_restore(*, customer: Customer, actor: Actor) -> Customer:
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.deleted_at is None:
        return locked
    if Customer.objects.alive().filter(env=locked.env, customer_id=locked.customer_id).exists():
        raise Conflict(
            f"Another customer now has the id {locked.customer_id!r}; change or delete it first.",
            code="duplicate_customer_id",
        )
    deleted_at = locked.deleted_at
    locked.deleted_at = None
    locked.deleted_by = None
    locked.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_RESTORE,
        customer=locked,
        target_type="customer",
        target_id=locked.customer_id,
        before={"deleted_at": deleted_at},
    )
    return locked


def customers_purge(*, older_than: datetime, actor: Actor) -> int:
    """Remove for good the customers deleted before `older_than`. Their audit entries stay."""
    purged = 0
    for pk in Customer.objects.deleted().filter(deleted_at__lt=older_than).values_list("pk", flat=True):
        with transaction.atomic():
            customer = Customer.objects.select_for_update().filter(pk=pk, deleted_at__lt=older_than).first()
            if customer is None:
                continue
            audit_record(
                actor=actor,
                action=AuditAction.CUSTOMER_PURGE,
                customer=None,
                env=customer.env,
                customer_ref=customer.customer_id,
                target_type="customer",
                target_id=customer.customer_id,
                before={
                    "id": customer.customer_id,
                    "name": customer.name,
                    "email": customer.email,
                    "deleted_at": customer.deleted_at,
                },
            )
            # Audit entries keep customer_ref when their customer row goes (SET_NULL).
            customer.customer_products.all().delete()  # before its custom products, which they protect
            customer.delete()
            purged += 1
    return purged


# --- API keys -----------------------------------------------------------------------------------

API_KEY_PREFIXES = {Env.SANDBOX: "am_sk_test_", Env.LIVE: "am_sk_live_"}
# A key's last_used_at is for people; writing it at most once a minute keeps hot keys off the write path.
API_KEY_LAST_USED_RESOLUTION = timedelta(minutes=1)
API_KEY_RANDOM_LENGTH = 40
API_KEY_NAME_MAX_LENGTH = 100


def api_key_hash(raw_key: str) -> str:
    """What is stored of a key: its SHA-256. The key itself is shown once and never stored."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, env: str, name: str, actor: Actor) -> tuple[ApiKey, str]:
    """Make a secret key for the API in one environment. Returns the key row and the raw key."""
    if env not in Env.values:
        raise ServiceError(f"Unknown environment {env!r}: choose sandbox or live.", code="invalid_input", field="env")
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ServiceError("Give the key a name, so people know what uses it.", code="invalid_input", field="name")
    if len(name) > API_KEY_NAME_MAX_LENGTH:
        raise ServiceError(
            f"A key name may be at most {API_KEY_NAME_MAX_LENGTH} characters.", code="invalid_input", field="name"
        )
    # token_urlsafe(30) is 40 characters of [A-Za-z0-9_-].
    raw_key = API_KEY_PREFIXES[env] + secrets.token_urlsafe(30)
    api_key = ApiKey.objects.create(
        name=name,
        env=env,
        prefix=raw_key[: len(API_KEY_PREFIXES[env]) + 4],
        key_hash=api_key_hash(raw_key),
        created_by=actor if isinstance(actor, AbstractBaseUser) else None,
    )
    audit_record(
        actor=actor,
        action=AuditAction.API_KEY_CREATE,
        env=env,
        target_type="api_key",
        target_id=api_key.pk,
        after={"name": name, "env": env, "prefix": api_key.prefix},
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor, now: datetime | None = None) -> ApiKey:
    """Revoke a key: from now on it answers 401. Revoking twice changes nothing."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if locked.revoked_at is not None:
        return locked
    locked.revoked_at = now or timezone.now()
    locked.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action=AuditAction.API_KEY_REVOKE,
        env=locked.env,
        target_type="api_key",
        target_id=locked.pk,
        before={"name": locked.name, "prefix": locked.prefix},
    )
    api_key.revoked_at = locked.revoked_at
    return locked
