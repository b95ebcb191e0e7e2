"""The one place that talks to Stripe.

Rules every function here keeps:
- Each environment has its own Stripe mode: sandbox customers (and sandbox API keys) are served only
  with `STRIPE_TEST_SECRET_KEY`, a test-mode key, live ones only with `STRIPE_LIVE_SECRET_KEY`, a
  live-mode key (autumn_admin/stripe_config.py refuses any other at start-up, `_client` again at each
  call). Every function takes the environment from the customer it acts for; there is no default.
- Nothing is called for an environment without its key: the hooks do nothing, and the calls a person
  asks for (checkout, delete in Stripe) raise `StripeError` saying Stripe is not connected for it.
- A webhook is verified with each environment's signing secret; the one that verifies names the
  environment, and its event is applied to that environment's customers only, and only when the
  event's `livemode` says the same (stripe_sync.process_event).
- No Stripe call runs while a database row is locked. Pushes caused by a local change are registered
  with `transaction.on_commit` from inside the service and run after it commits; results are written
  back in short transactions of their own afterwards.
- Every POST carries an idempotency key derived from the local change (its audit entry), so the
  library's retries (timeouts, 5xx) and a later retry of the same change never do the work twice.
- A failure never undoes the local change. Pushes store a message for people in
  `Customer.stripe_sync_error` (cleared by the next successful push of the same kind); calls made on
  request raise `StripeError`, whose `.message` the dashboard shows and the API returns as `stripe_error`.

Our Stripe API version has no customer-level coupon any more, so a customer's discount rewards act
in Stripe as the `discounts` of the customer's subscriptions and of every Checkout Session we create.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

import stripe
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import DISCOUNT_REWARD_TYPES, CustomerReward, Price, Reward
from billing.stripe_config import KEY_SETTING, MODE, WEBHOOK_SETTING, key_env
from customers.audit import AuditAction, audit_record
from customers.errors import ServiceError
from customers.models import AuditEntry, Customer
from customers.services.customers import customer_stripe_link

logger = logging.getLogger(__name__)

# Labels that start each kind of message in Customer.stripe_sync_error; a success clears its own kind.
DETAILS = "Name and email not sent to Stripe"
DISCOUNTS = "Coupons not updated in Stripe"
DELETE = "Not deleted in Stripe"
BACKFILL = "Invoices and subscriptions not read from Stripe"

STATUS_CACHE_SECONDS = 300
STATUS_ERROR_CACHE_SECONDS = 30
LIVE_SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
STRIPE_INTERVAL = {"month": ("month", 1), "quarter": ("month", 3), "semi_annual": ("month", 6), "year": ("year", 1)}
COUPON_DURATION = {"one_off": "once", "months": "repeating", "forever": "forever"}


class StripeError(Exception):
    """Stripe refused or failed a call. `.message` is written for the person; nothing local changed
    because of it. `.code` is Stripe's error code when it gave one (`resource_missing`, …) or ours
    (`stripe_not_connected`, `stripe_unreachable`, …); `.status` is the HTTP status the API answers
    with: 502 by default, 503 when Stripe is not connected or rate limiting, 504 on a time-out."""

    def __init__(self, message: str, *, code: str = "stripe_error", status: int = 502):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class WebhookRejected(Exception):
    """A webhook body that is not a genuine, recent Stripe event."""


# --- the client ---------------------------------------------------------------------------------


def secret_key(env: str) -> str:
    """The Stripe secret key of an environment ("" when it has none). Unknown environments raise KeyError."""
    return getattr(settings, KEY_SETTING[env])


def is_configured(env: str) -> bool:
    """Whether the environment is connected to Stripe (has its key)."""
    return bool(secret_key(env))


_clients: dict[tuple, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def _client(env: str) -> stripe.StripeClient:
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
        client = _clients.get(key)
        if client is None:
            client = stripe.StripeClient(
                secret,
                base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
                max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
                http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
            )
            _clients[key] = client
        return client


def _translate(exc: stripe.StripeError, env: str) -> StripeError:
    said = (exc.user_message or "").strip()
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
        return StripeError(
            f"Stripe refused the request: {said or 'invalid request'}", code=exc.code or "stripe_invalid_request"
        )
    return StripeError(f"Stripe had an error (HTTP {exc.http_status or '?'}); try again.", code="stripe_api_error")


def _call(env: str, method, *args):
    """`method` (of `_client(env)`) called; Stripe's failures become StripeError."""
    try:
        return method(*args)
    except stripe.StripeError as exc:
        logger.warning("Stripe call failed (%s): %s", env, exc)
        raise _translate(exc, env) from exc


def _paged(env: str, listing) -> Iterator[dict]:
    """Every object of a Stripe list, following its pages; failures become StripeError."""
    try:
        for obj in listing.auto_paging_iter():
            yield obj.to_dict()
    except stripe.StripeError as exc:
        logger.warning("Stripe list failed (%s): %s", env, exc)
        raise _translate(exc, env) from exc


def _key(*parts) -> str:
    return "-".join(str(p) for p in parts)


# --- status -------------------------------------------------------------------------------------


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
        return bool(getattr(settings, WEBHOOK_SETTING[self.env]))


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
        account = _call(env, _client(env).v1.accounts.retrieve_current, None, {"max_network_retries": 0}).to_dict()
    except StripeError as exc:
        status = StripeStatus(env=env, configured=True, error=exc.message)
        cache.set(cache_key, status, STATUS_ERROR_CACHE_SECONDS)
        return status
    name = (
        ((account.get("settings") or {}).get("dashboard") or {}).get("display_name")
        or ((account.get("business_profile") or {}).get("name"))
        or account.get("email")
        or ""
    )
    status = StripeStatus(env=env, configured=True, connected=True, account_id=account.get("id", ""), account_name=name)
    cache.set(cache_key, status, STATUS_CACHE_SECONDS)
    return status


# --- what people see when a push fails ----------------------------------------------------------


def _record_failure(customer_pk: int, label: str, exc: StripeError) -> str:

    message = f"{label}: {exc.message}"
    Customer.objects.filter(pk=customer_pk).update(stripe_sync_error=message)
    return message


def _record_success(customer_pk: int, label: str) -> None:

    Customer.objects.filter(pk=customer_pk, stripe_sync_error__startswith=label).update(stripe_sync_error="")


# --- customers ----------------------------------------------------------------------------------


def customer_details_changed(*, customer, audit_entry) -> None:
    """Called inside customer_update when the name or email changed: push them once it commits."""
    if customer.stripe_id and is_configured(customer.env):
        transaction.on_commit(
            partial(
                push_customer_details, customer_pk=customer.pk, idempotency_key=_key("customer-update", audit_entry.pk)
            ),
            robust=True,
        )


def push_customer_details(*, customer_pk: int, idempotency_key: str) -> str:
    """Send the customer's current name and email to its Stripe customer. Returns the error, or ""."""

    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or not customer.stripe_id or not is_configured(customer.env):
        return ""
    try:
        _call(
            customer.env,
            _client(customer.env).v1.customers.update,
            customer.stripe_id,
            {"name": customer.name, "email": customer.email},
            {"idempotency_key": idempotency_key},
        )
    except StripeError as exc:
        return _record_failure(customer.pk, DETAILS, exc)
    _record_success(customer.pk, DETAILS)
    return ""


def ensure_stripe_customer(customer) -> str:
    """The customer's Stripe id, creating the Stripe customer (and storing the link) if it has none."""

    if customer.stripe_id:
        return customer.stripe_id
    # A new key after each unlink: within Stripe's 24 h key memory a re-created customer must not
    # replay the Stripe customer that was deleted.
    generation = (
        AuditEntry.objects.filter(customer=customer, action=AuditAction.CUSTOMER_STRIPE_UNLINK)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
        or 0
    )
    params = {"name": customer.name, "metadata": {"customer_id": customer.customer_id, "env": customer.env}}
    if customer.email:
        params["email"] = customer.email
    created = _call(
        customer.env,
        _client(customer.env).v1.customers.create,
        params,
        {"idempotency_key": _key("customer-create", customer.pk, generation)},
    )
    linked = customer_stripe_link(
        customer=customer, stripe_id=created.id, expected="", actor=None, reason="Stripe customer created for checkout"
    )
    return linked.stripe_id


def customer_delete_in_stripe(*, customer, actor=None) -> None:
    """Delete the customer's Stripe customer and unlink it here ("Also delete in Stripe").

    Call it after `customer_delete` committed. Raises StripeError when Stripe isn't connected or
    refuses; a Stripe customer that is already gone counts as deleted.
    """

    stripe_id = customer.stripe_id
    if not stripe_id:
        return
    try:
        _call(customer.env, _client(customer.env).v1.customers.delete, stripe_id)
    except StripeError as exc:
        if exc.code != "resource_missing":
            if exc.code != "stripe_not_connected":
                _record_failure(customer.pk, DELETE, exc)
            raise
    _record_success(customer.pk, DELETE)
    customer_stripe_link(customer=customer, stripe_id="", expected=stripe_id, actor=actor, reason="Deleted in Stripe")


# --- coupons and discounts ----------------------------------------------------------------------


def coupon_params(reward) -> dict:
    """The Stripe coupon that stands for a discount reward."""
    if not reward.is_discount:
        raise ServiceError(f"{reward.name} is not a discount, so it has no Stripe coupon.", code="not_a_discount")
    params: dict = {
        "duration": COUPON_DURATION[reward.duration],
        "name": reward.name[:40],
        "metadata": {"reward_id": reward.reward_id},
    }
    if reward.duration == "months":
        params["duration_in_months"] = reward.duration_months
    if reward.type == "percentage_discount":
        params["percent_off"] = format(Decimal(reward.value).quantize(Decimal("0.01")).normalize(), "f")
    else:
        params["amount_off"] = int(Decimal(reward.value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        params["currency"] = reward.currency
    return params


# Rewards are shared by both environments; a coupon exists in one Stripe mode only.
COUPON_FIELD = {"sandbox": "stripe_coupon_id", "live": "stripe_live_coupon_id"}


def coupon_for_reward(reward, *, env: str) -> str:
    """The reward's coupon in the environment's Stripe mode, creating the coupon there the first time."""

    field = COUPON_FIELD[env]
    if getattr(reward, field):
        return getattr(reward, field)
    params = coupon_params(reward)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    coupon = _call(
        env, _client(env).v1.coupons.create, params, {"idempotency_key": _key("reward", reward.pk, "coupon", digest)}
    )
    with transaction.atomic():
        stored = Reward.objects.filter(pk=reward.pk, **{field: ""}).update(**{field: coupon.id})
        if stored:
            audit_record(
                actor=None,
                action=AuditAction.REWARD_STRIPE_COUPON,
                target_type="reward",
                target_id=reward.reward_id,
                after={field: coupon.id},
                env=env,
            )
    reward.refresh_from_db(fields=[field])
    return getattr(reward, field)


def active_discounts(customer, now=None) -> list:
    """The customer's discount rewards in force, newest first."""

    now = now or timezone.now()
    applied = (
        CustomerReward.objects.filter(
            customer=customer,
            removed_at__isnull=True,
            reward__type__in=DISCOUNT_REWARD_TYPES,
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("reward")
        .order_by("-applied_at", "-id")
    )
    return [cr.reward for cr in applied]


def discounts_changed(*, customer, reward, audit_entry) -> None:
    """Called inside reward_apply / reward_remove: bring the Stripe discounts in line once it commits."""
    if customer.stripe_id and reward.is_discount and is_configured(customer.env):
        transaction.on_commit(
            partial(push_discounts, customer_pk=customer.pk, idempotency_prefix=_key("rewards", audit_entry.pk)),
            robust=True,
        )


def push_discounts(*, customer_pk: int, idempotency_prefix: str) -> str:
    """Make the discounts of the customer's live Stripe subscriptions exactly its discount rewards
    (their coupons created as needed). Returns the error, or ""."""

    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or not customer.stripe_id or not is_configured(customer.env):
        return ""
    env = customer.env
    rewards = active_discounts(customer)
    try:
        coupons = [coupon_for_reward(r, env=env) for r in rewards]
        client = _client(env)
        listing = _call(env, client.v1.subscriptions.list, {"customer": customer.stripe_id, "limit": 100})
        for sub in _paged(env, listing):
            if sub["status"] not in LIVE_SUBSCRIPTION_STATUSES:
                continue
            _call(
                env,
                client.v1.subscriptions.update,
                sub["id"],
                {"discounts": [{"coupon": c} for c in coupons] or ""},
                {"idempotency_key": _key(idempotency_prefix, sub["id"])},
            )
    except StripeError as exc:
        return _record_failure(customer.pk, DISCOUNTS, exc)
    CustomerReward.objects.filter(customer=customer, reward__in=rewards, removed_at__isnull=True).update(
        stripe_synced_at=timezone.now()
    )
    _record_success(customer.pk, DISCOUNTS)
    return ""


# --- checkout -----------------------------------------------------------------------------------


def _line_items(product) -> tuple[list[dict], bool]:
    items, recurring = [], False
    for price in product.prices.all().order_by("id"):
        if price.type == Price.Type.USAGE:
            # Usage is charged through a metered Stripe price; without one there is nothing to buy up front.
            if price.stripe_price_id:
                items.append({"price": price.stripe_price_id})
                recurring = True
            continue
        recurring = recurring or price.is_recurring
        if price.stripe_price_id:
            items.append({"price": price.stripe_price_id, "quantity": 1})
            continue
        data = {
            "currency": price.currency,
            "unit_amount": price.amount,
            "product_data": {"name": product.name, "metadata": {"product_id": product.product_id}},
        }
        if price.is_recurring:
            interval, count = STRIPE_INTERVAL[price.interval]
            data["recurring"] = {"interval": interval, "interval_count": count * price.interval_count}
        items.append({"price_data": data, "quantity": 1})
    return items, recurring


def checkout_url_for(*, customer, product, success_url: str, cancel_url: str) -> str:
    """A Stripe Checkout Session for `product` (a subscription if it has a recurring price, else a
    one-off payment) with the customer's discount, and its URL.

    Call it outside any transaction. Creates the Stripe customer first when there is none.
    Raises StripeError (Stripe not connected or failing) or ServiceError (nothing to pay for).
    """
    items, recurring = _line_items(product)
    if not items:
        raise ServiceError(f"{product.name} has no price to pay for.", code="product_has_no_price", field="product_id")
    client = _client(customer.env)
    stripe_id = ensure_stripe_customer(customer)
    metadata = {
        "customer_id": customer.customer_id,
        "env": customer.env,
        "product_id": product.product_id,
        "product_version": str(product.version),
    }
    params: dict = {
        "mode": "subscription" if recurring else "payment",
        "customer": stripe_id,
        "line_items": items,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": customer.customer_id,
        "metadata": metadata,
    }
    if recurring:
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["invoice_creation"] = {"enabled": True, "invoice_data": {"metadata": metadata}}
    discounts = active_discounts(customer)
    if discounts:
        params["discounts"] = [{"coupon": coupon_for_reward(discounts[0], env=customer.env)}]
    # The library's own key covers its retries; a new attempt is a new session.
    session = _call(customer.env, client.v1.checkout.sessions.create, params)
    return session.url


# --- reading from Stripe ------------------------------------------------------------------------


def invoices_of(customer) -> Iterator[dict]:
    """The invoices of the customer's Stripe customer, read in its environment's Stripe mode."""
    env = customer.env
    return _paged(env, _call(env, _client(env).v1.invoices.list, {"customer": customer.stripe_id, "limit": 100}))


def subscriptions_of(customer) -> Iterator[dict]:
    """The subscriptions (ended ones too) of the customer's Stripe customer, in its environment's mode."""
    env = customer.env
    return _paged(
        env,
        _call(env, _client(env).v1.subscriptions.list, {"customer": customer.stripe_id, "status": "all", "limit": 100}),
    )


def retry_failed_push(customer) -> str:
    """Send again what the customer's last failed push was about. Returns the error, or ""."""

    error = customer.stripe_sync_error
    latest = AuditEntry.objects.filter(customer=customer).order_by("-id").values_list("id", flat=True).first()
    if error.startswith(DETAILS):
        return push_customer_details(customer_pk=customer.pk, idempotency_key=_key("customer-resend", latest))
    if error.startswith(DISCOUNTS):
        return push_discounts(customer_pk=customer.pk, idempotency_prefix=_key("rewards-resend", latest))
    return ""


def record_backfill(customer, exc: StripeError | None) -> None:
    if exc is None:
        _record_success(customer.pk, BACKFILL)
    else:
        _record_failure(customer.pk, BACKFILL, exc)


# --- webhooks -----------------------------------------------------------------------------------

MAX_BIG_INT = 2**63 - 1


def _is_event(data) -> bool:
    """Whether a body has what every Stripe event has: the fields this app reads, of their types and
    within what the database stores. What is inside `data.object` is the handlers' to check."""
    if not isinstance(data, dict):
        return False
    event_id, created, envelope = data.get("id"), data.get("created"), data.get("data")
    return (
        isinstance(event_id, str)
        and 0 < len(event_id) <= 255
        and isinstance(data.get("type"), str)
        and bool(data["type"])
        and isinstance(created, int)
        and not isinstance(created, bool)
        and 0 <= created <= MAX_BIG_INT
        and isinstance(data.get("livemode"), bool)
        and isinstance(envelope, dict)
        and isinstance(envelope.get("object"), dict)
    )


def event_from_webhook(payload: bytes, signature: str) -> tuple[dict, str]:
    """The event a webhook carries and the environment whose signing secret verified it (and its
    age): each environment's secret is tried. Raises WebhookRejected when none verifies, or when the
    body is not a Stripe event. Whether the event is of that environment is for process_event."""
    secrets = {env: secret for env, name in WEBHOOK_SETTING.items() if (secret := getattr(settings, name))}
    if not secrets:
        raise WebhookRejected(
            f"Stripe webhooks are not set up here ({' and '.join(WEBHOOK_SETTING.values())} are empty)."
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("The body is not JSON.")
    signed_for = None
    for env, secret in secrets.items():
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
        except stripe.SignatureVerificationError:
            continue
        signed_for = env
        break
    if signed_for is None:
        raise WebhookRejected("The Stripe-Signature header is missing, wrong or too old.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookRejected("The body is not JSON.")
    if not _is_event(data):
        raise WebhookRejected("The body is not a Stripe event.")
    return data, signed_for
