"""State changes of customers: create, update (with the stale-form check), delete, restore, purge and the Stripe
link. Each takes the actor and writes its audit entry in its transaction."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.audit import Actor, AuditAction, audit_record
from customers.errors import Conflict, ServiceError
from customers.models import Customer, Env
from customers.signals import customer_created, customer_details_changed
from customers.stale import MISSING, StaleForm, by_whom, last_change, quoted
from customers.validation import clean_customer_fields, validate_customer_id, validate_metadata, validate_reason


def _id_taken(customer_id: str, *, field: str) -> Conflict:
    return Conflict(f"A customer with id {customer_id!r} already exists.", code="duplicate_customer_id", field=field)


def _snapshot(customer: Customer, keys) -> dict:
    return {k: getattr(customer, "customer_id" if k == "id" else k) for k in keys}


@transaction.atomic
def customer_create(*, env: str, customer_id: str, actor: Actor, attach_defaults: bool = True, **fields) -> Customer:
    """Create a customer and put it on the default (free) products."""
    if env not in Env.values:
        raise ServiceError(f"Unknown environment {env!r}.", code="invalid_input", field="env")
    customer_id = validate_customer_id(customer_id)
    clean = clean_customer_fields(fields)
    if Customer.objects.alive().filter(env=env, customer_id=customer_id).exists():
        raise _id_taken(customer_id, field="id")
    try:
        with transaction.atomic():
            customer = Customer.objects.create(env=env, customer_id=customer_id, **clean)
    except IntegrityError:  # created meanwhile by a concurrent request
        raise _id_taken(customer_id, field="id")
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
    clean = clean_customer_fields(fields)
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if expected:
        _check_expected(locked, expected, fields=clean, new_customer_id=new_customer_id, metadata_merge=metadata_merge)
    if metadata_merge is not None:
        merged = dict(locked.metadata or {})
        for key, value in clean_customer_fields({"metadata": metadata_merge})["metadata"].items():
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
                raise _id_taken(new_id, field="new_customer_id")
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
    for pk in Customer.objects.deleted_before(older_than).values_list("pk", flat=True):
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
