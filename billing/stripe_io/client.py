"""The Stripe client of each environment and how every call goes through it: Stripe's failures as
`StripeError`, lists followed page by page, idempotency keys, and the connection status of `/stripe/`.

Rules every Stripe call of the package keeps:
- Each environment has its own Stripe mode: sandbox customers (and sandbox API keys) are served only
  with `STRIPE_TEST_SECRET_KEY`, a test-mode key, live ones only with `STRIPE_LIVE_SECRET_KEY`, a
  live-mode key (billing/stripe_io/config.py refuses any other at start-up, `client` again at each
  call). Every call takes the environment from the customer it acts for; there is no default.
- Nothing is called for an environment without its key: the pushes do nothing, and the calls a person
  asks for (checkout, delete in Stripe) raise `StripeError` saying Stripe is not connected for it.
- No Stripe call runs while a database row is locked. Pushes caused by a local change are registered
  with `transaction.on_commit` from inside the service and run after it commits; results are written
  back in short transactions of their own afterwards.
- Every POST carries an idempotency key derived from the local change (its audit entry), so the
  library's retries (timeouts, 5xx) and a later retry of the same change never do the work twice.
- A failure never undoes the local change. Pushes store a message for people in
  `Customer.stripe_sync_error` (cleared by the next successful push of the same kind); calls made on
  request raise `StripeError`, whose `.message` the dashboard shows and the API returns as `stripe_error`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.core.cache import cache

from billing.stripe_io.config import (
    KEY_SETTING,
    MODE,
    WEBHOOK_SETTING,
    is_configured,
    key_env,
    secret_key,
    webhook_secret,
)

logger = logging.getLogger(__name__)

STATUS_CACHE_SECONDS = 300
STATUS_ERROR_CACHE_SECONDS = 30
PAGE_SIZE = 100  # objects per page when reading a Stripe list


class StripeError(Exception):
    """Stripe refused or failed a call. `.message` is written for the person; nothing local changed
    because of it. `.code` is Stripe's error code when it gave one (`resource_missing`, …) or ours
    (`stripe_not_connected`, `stripe_unreachable`, …); `.status` is the HTTP status the API answers
    with: 502 by default, 503 when Stripe is not connected or rate limiting, 504 on a time-out."""

    def __init__(self, message: str, *, code: str, status: int = 502):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


_clients: dict[tuple, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def client(env: str) -> stripe.StripeClient:
    """The client of the environment's own Stripe mode; StripeError when it has no key of that mode."""
    secret = secret_key(env)
    if not secret:
        raise StripeError(
            f"Stripe is not connected for {env} ({KEY_SETTING[env]} is not set).",
            code="stripe_not_connected",
            status=503,
        )
    if key_env(secret) != env:  # settings refuse this at start-up; a changed setting must not slip through
        raise StripeError(
            f"Stripe is not connected for {env}: {KEY_SETTING[env]} is not a {MODE[env]}-mode key.",
            code="stripe_not_connected",
            status=503,
        )
    key = (secret, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT, settings.STRIPE_MAX_NETWORK_RETRIES)
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            found = stripe.StripeClient(
                secret,
                base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
                max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
                http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
            )
            _clients[key] = found
        return found


def _translate(exc: stripe.StripeError, env: str) -> StripeError:
    if isinstance(exc, stripe.APIConnectionError):
        return StripeError(
            "Stripe did not answer in time or could not be reached; try again.", code="stripe_unreachable", status=504
        )
    if isinstance(exc, stripe.AuthenticationError):
        return StripeError(f"Stripe refused the API key; check {KEY_SETTING[env]}.", code="stripe_auth_failed")
    if isinstance(exc, stripe.PermissionError):
        return StripeError("The Stripe API key is not allowed to do this.", code="stripe_permission_denied")
    if isinstance(exc, stripe.RateLimitError):
        return StripeError(
            "Stripe is limiting the request rate; try again in a minute.", code="stripe_rate_limited", status=503
        )
    if isinstance(exc, (stripe.InvalidRequestError, stripe.CardError, stripe.IdempotencyError)):
        said = (exc.user_message or "").strip()
        return StripeError(
            f"Stripe refused the request: {said or 'invalid request'}", code=exc.code or "stripe_invalid_request"
        )
    return StripeError(f"Stripe had an error (HTTP {exc.http_status or '?'}); try again.", code="stripe_api_error")


def call(env: str, method, *args):
    """`method` (of `client(env)`) called; Stripe's failures become StripeError."""
    try:
        return method(*args)
    except stripe.StripeError as exc:
        logger.warning("Stripe call failed (%s): %s", env, exc)
        raise _translate(exc, env) from exc


def paged(env: str, method, params: dict) -> Iterator[dict]:
    """Every object of the Stripe list `method` (of `client(env)`) answers for `params`, following its
    pages; failures become StripeError."""
    listing = call(env, method, {**params, "limit": PAGE_SIZE})
    try:
        for obj in listing.auto_paging_iter():
            yield obj.to_dict()
    except stripe.StripeError as exc:
        logger.warning("Stripe list failed (%s): %s", env, exc)
        raise _translate(exc, env) from exc


def idempotency_key(*parts) -> str:
    """The idempotency key of a Stripe POST, made of what names the local change it carries."""
    return "-".join(str(p) for p in parts)


# --- the connection status ----------------------------------------------------------------------


@dataclass(frozen=True)
class StripeStatus:
    """One environment's connection: `key_setting` and `webhook_setting` name its variables."""

    env: str
    configured: bool
    connected: bool = False
    account_id: str = ""
    account_name: str = ""
    error: str = ""

    @property
    def test_mode(self) -> bool:
        return MODE[self.env] == "test"

    @property
    def key_setting(self) -> str:
        return KEY_SETTING[self.env]

    @property
    def webhook_setting(self) -> str:
        return WEBHOOK_SETTING[self.env]

    @property
    def webhook_secret_set(self) -> bool:
        return bool(webhook_secret(self.env))


def stripe_status(env: str) -> StripeStatus:
    """Whether the environment is connected to Stripe, and to which account (asked of Stripe at most
    every 5 minutes)."""
    if not is_configured(env):
        return StripeStatus(env=env, configured=False)
    fingerprint = hashlib.sha256(f"{env}|{secret_key(env)}|{settings.STRIPE_API_BASE}".encode()).hexdigest()
    cache_key = f"stripe-status:{fingerprint[:24]}"
    status = cache.get(cache_key)
    if status is not None:
        return status
    try:
        # A status line should not keep the page waiting through retries.
        account = call(env, client(env).v1.accounts.retrieve_current, None, {"max_network_retries": 0}).to_dict()
    except StripeError as exc:
        status = StripeStatus(env=env, configured=True, error=exc.message)
        cache.set(cache_key, status, STATUS_ERROR_CACHE_SECONDS)
        return status
    status = StripeStatus(
        env=env, configured=True, connected=True, account_id=account.get("id", ""), account_name=_account_name(account)
    )
    cache.set(cache_key, status, STATUS_CACHE_SECONDS)
    return status


def _account_name(account: dict) -> str:
    return (
        ((account.get("settings") or {}).get("dashboard") or {}).get("display_name")
        or ((account.get("business_profile") or {}).get("name"))
        or account.get("email")
        or ""
    )
