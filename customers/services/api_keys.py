"""The API's secret keys: what is stored of one (its hash), creating and revoking keys (audited), and noting a
key's last use."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from customers.audit import Actor, AuditAction, audit_record
from customers.errors import ServiceError
from customers.models import ApiKey, Env

API_KEY_PREFIXES = {Env.SANDBOX: "am_sk_test_", Env.LIVE: "am_sk_live_"}
# A key's last_used_at is for people; writing it at most once a minute keeps hot keys off the write path.
API_KEY_LAST_USED_RESOLUTION = timedelta(minutes=1)
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


def api_key_mark_used(*, api_key: ApiKey, now: datetime | None = None) -> None:
    """Note that `api_key` was just used: one UPDATE, at most once per API_KEY_LAST_USED_RESOLUTION (none
    in between), so that a busy key isn't written on every request. Not audited: it is a reading, not a change
    anyone made. The one-statement track (billing/services/track.py) applies the same rule in its SQL."""
    now = now or timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= API_KEY_LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
