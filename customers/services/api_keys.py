"""The API's secret keys: what is stored of one (its hash), creating and revoking keys (audited), and noting a
key's last use; and the customer tokens a secret key mints (Autumn's keys.mint/refresh/revoke): an access
token that reaches only its customer's data, with the refresh token that rotates it, both audited."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from customers.audit import Actor, AuditAction, audit_record
from customers.errors import ServiceError
from customers.models import ApiKey, ApiKeyKind, Customer, Env

API_KEY_PREFIXES = {Env.SANDBOX: "am_sk_test_", Env.LIVE: "am_sk_live_"}
# A key's last_used_at is for people; writing it at most once a minute keeps hot keys off the write path.
API_KEY_LAST_USED_RESOLUTION = timedelta(minutes=1)
API_KEY_NAME_MAX_LENGTH = 100
CUSTOMER_TOKEN_PREFIX = "am_jwt_"
# Autumn's lifetimes: an access token lasts an hour (or, minted indefinite, until revoked), a refresh token a day.
ACCESS_TOKEN_LIFETIME = timedelta(hours=1)
REFRESH_TOKEN_LIFETIME = timedelta(days=1)


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


def _new_token(*, customer: Customer, kind: str, expires_at: datetime | None, now: datetime) -> tuple[ApiKey, str]:
    raw = CUSTOMER_TOKEN_PREFIX + secrets.token_urlsafe(30)
    token = ApiKey.objects.create(
        name=f"{ApiKeyKind(kind).label} for {customer.customer_id}"[:API_KEY_NAME_MAX_LENGTH],
        kind=kind,
        env=customer.env,
        customer=customer,
        prefix=raw[: len(CUSTOMER_TOKEN_PREFIX) + 4],
        key_hash=api_key_hash(raw),
        created_at=now,
        expires_at=expires_at,
    )
    return token, raw


def _token_pair(*, customer: Customer, indefinite: bool, now: datetime) -> dict:
    """A new access token (and, unless indefinite, its refresh token): the raw tokens and their ends."""
    access, raw_access = _new_token(
        customer=customer,
        kind=ApiKeyKind.ACCESS,
        expires_at=None if indefinite else now + ACCESS_TOKEN_LIFETIME,
        now=now,
    )
    pair = {"access": access, "access_token": raw_access, "refresh": None, "refresh_token": None}
    if not indefinite:
        pair["refresh"], pair["refresh_token"] = _new_token(
            customer=customer, kind=ApiKeyKind.REFRESH, expires_at=now + REFRESH_TOKEN_LIFETIME, now=now
        )
    return pair


def _described(pair: dict) -> dict:
    return {
        "access_prefix": pair["access"].prefix,
        "access_expires_at": pair["access"].expires_at,
        "refresh_prefix": pair["refresh"].prefix if pair["refresh"] else None,
    }


@transaction.atomic
def customer_token_mint(
    *, customer: Customer, actor: ApiKey, indefinite: bool = False, now: datetime | None = None
) -> dict:
    """Mint a token pair for `customer` with a secret key of its environment. Returns the rows and raw tokens
    (`access`, `access_token`, `refresh`, `refresh_token`; no refresh token when indefinite)."""
    if actor.kind != ApiKeyKind.SECRET or actor.env != customer.env:
        raise ServiceError(
            "Only a secret key of the customer's environment mints its tokens.", code="forbidden", status=403
        )
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.deleted_at is not None:
        raise ServiceError(
            f"Customer {customer.customer_id} not found", code="customer_not_found", field="customer_id", status=404
        )
    pair = _token_pair(customer=locked, indefinite=indefinite, now=now or timezone.now())
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_TOKEN_MINT,
        customer=locked,
        target_type="api_key",
        target_id=pair["access"].pk,
        after={**_described(pair), "indefinite": indefinite},
    )
    return pair


@transaction.atomic
def customer_token_refresh(*, refresh: ApiKey, now: datetime | None = None) -> dict:
    """Rotate a refresh token: it stops working and a new access and refresh pair is minted for its customer.
    A refresh token that was revoked, rotated already or has expired is refused (ServiceError "unauthorized")."""
    now = now or timezone.now()
    locked = ApiKey.objects.select_for_update(of=("self",)).select_related("customer").get(pk=refresh.pk)
    if (
        locked.kind != ApiKeyKind.REFRESH
        or locked.revoked_at is not None
        or (locked.expires_at is not None and locked.expires_at <= now)
        or locked.customer.deleted_at is not None
    ):
        raise ServiceError("Invalid or expired customer token", code="invalid_request", status=401)
    locked.revoked_at = now
    locked.save(update_fields=["revoked_at"])
    pair = _token_pair(customer=locked.customer, indefinite=False, now=now)
    audit_record(
        actor=locked,
        action=AuditAction.CUSTOMER_TOKEN_REFRESH,
        customer=locked.customer,
        target_type="api_key",
        target_id=pair["access"].pk,
        before={"refresh_prefix": locked.prefix},
        after=_described(pair),
    )
    return pair


@transaction.atomic
def customer_tokens_revoke(*, customer: Customer, actor: ApiKey, now: datetime | None = None) -> int:
    """Revoke every outstanding access and refresh token of `customer` (secret key of its environment only).
    Returns how many were revoked; none outstanding changes nothing and writes no entry."""
    if actor.kind != ApiKeyKind.SECRET or actor.env != customer.env:
        raise ServiceError(
            "Only a secret key of the customer's environment revokes its tokens.", code="forbidden", status=403
        )
    now = now or timezone.now()
    outstanding = list(
        ApiKey.objects.select_for_update()
        .filter(customer=customer, kind__in=[ApiKeyKind.ACCESS, ApiKeyKind.REFRESH], revoked_at__isnull=True)
        .order_by("pk")
    )
    if not outstanding:
        return 0
    ApiKey.objects.filter(pk__in=[t.pk for t in outstanding]).update(revoked_at=now)
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_TOKEN_REVOKE,
        customer=customer,
        target_type="customer",
        target_id=customer.customer_id,
        before={"outstanding": [t.prefix for t in outstanding]},
    )
    return len(outstanding)
