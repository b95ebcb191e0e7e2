"""The one place that talks to Stripe.

Rules every function here keeps:
- Nothing is called without `STRIPE_SECRET_KEY`: the hooks do nothing, and the calls a person asks
  for (checkout, delete in Stripe) raise `StripeError` saying Stripe is not connected.
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

from autumn_admin.errors import ServiceError

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

def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


_clients: dict[tuple, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def _client() -> stripe.StripeClient:
    if not is_configured():
        raise StripeError("Stripe is not connected (STRIPE_SECRET_KEY is not set).", code="stripe_not_connected",
                          status=503)
    key = (settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT,
           settings.STRIPE_MAX_NETWORK_RETRIES)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = stripe.StripeClient(
                settings.STRIPE_SECRET_KEY,
                base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None,
                max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
                http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
            )
            _clients[key] = client
        return client


def _translate(exc: stripe.StripeError) -> StripeError:
    said = (exc.user_message or "").strip()
    if isinstance(exc, stripe.APIConnectionError):
        return StripeError("Stripe did not answer in time or could not be reached; try again.",
                           code="stripe_unreachable", status=504)
    if isinstance(exc, stripe.AuthenticationError):
        return StripeError("Stripe refused the API key; check STRIPE_SECRET_KEY.", code="stripe_auth_failed")
    if isinstance(exc, stripe.PermissionError):
        return StripeError("The Stripe API key is not allowed to do this.", code="stripe_permission_denied")
    if isinstance(exc, stripe.RateLimitError):
        return StripeError("Stripe is limiting the request rate; try again in a minute.", code="stripe_rate_limited",
                           status=503)
    if isinstance(exc, (stripe.InvalidRequestError, stripe.CardError, stripe.IdempotencyError)):
        return StripeError(f"Stripe refused the request: {said or 'invalid request'}",
                           code=exc.code or "stripe_invalid_request")
    return StripeError(f"Stripe had an error (HTTP {exc.http_status or '?'}); try again.", code="stripe_api_error")


def _call(method, *args, **kwargs):
    try:
        return method(*args, **kwargs)
    except stripe.StripeError as exc:
        logger.warning("Stripe call failed: %s", exc)
        raise _translate(exc) from exc


def _paged(listing) -> Iterator[dict]:
    """Every object of a Stripe list, following its pages; failures become StripeError."""
    try:
        for obj in listing.auto_paging_iter():
            yield obj.to_dict()
    except stripe.StripeError as exc:
        logger.warning("Stripe list failed: %s", exc)
        raise _translate(exc) from exc


def _key(*parts) -> str:
    return "-".join(str(p) for p in parts)


# --- status -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StripeStatus:
    configured: bool
    connected: bool = False
    account_id: str = ""
    account_name: str = ""
    test_mode: bool = False
    error: str = ""


def is_test_key(secret_key: str | None = None) -> bool:
    return (secret_key or settings.STRIPE_SECRET_KEY or "").startswith(("sk_test_", "rk_test_"))


def stripe_status() -> StripeStatus:
    """Whether Stripe is connected, and to which account (asked of Stripe at most every 5 minutes)."""
    if not is_configured():
        return StripeStatus(configured=False)
    fingerprint = hashlib.sha256(f"{settings.STRIPE_SECRET_KEY}|{settings.STRIPE_API_BASE}".encode()).hexdigest()
    cache_key = f"stripe-status:{fingerprint[:24]}"
    status = cache.get(cache_key)
    if status is not None:
        return status
    try:
        # A status line should not keep the page waiting through retries.
        account = _call(_client().v1.accounts.retrieve_current, None, {"max_network_retries": 0}).to_dict()
    except StripeError as exc:
        status = StripeStatus(configured=True, test_mode=is_test_key(), error=exc.message)
        cache.set(cache_key, status, STATUS_ERROR_CACHE_SECONDS)
        return status
    name = ((account.get("settings") or {}).get("dashboard") or {}).get("display_name") or (
        (account.get("business_profile") or {}).get("name")) or account.get("email") or ""
    status = StripeStatus(configured=True, connected=True, account_id=account.get("id", ""), account_name=name,
                          test_mode=is_test_key())
    cache.set(cache_key, status, STATUS_CACHE_SECONDS)
    return status


# --- what people see when a push fails ----------------------------------------------------------

def _record_failure(customer_pk: int, label: str, exc: StripeError) -> str:
    from customers.models import Customer

    message = f"{label}: {exc.message}"
    Customer.objects.filter(pk=customer_pk).update(stripe_sync_error=message)
    return message


def _record_success(customer_pk: int, label: str) -> None:
    from customers.models import Customer

    Customer.objects.filter(pk=customer_pk, stripe_sync_error__startswith=label).update(stripe_sync_error="")


# --- customers ----------------------------------------------------------------------------------

def customer_details_changed(*, customer, audit_entry) -> None:
    """Called inside customer_update when the name or email changed: push them once it commits."""
    if is_configured() and customer.stripe_id:
        transaction.on_commit(
            partial(push_customer_details, customer_pk=customer.pk,
                    idempotency_key=_key("customer-update", audit_entry.pk)),
            robust=True,
        )


def push_customer_details(*, customer_pk: int, idempotency_key: str) -> str:
    """Send the customer's current name and email to its Stripe customer. Returns the error, or ""."""
    from customers.models import Customer

    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or not customer.stripe_id or not is_configured():
        return ""
    try:
        _call(_client().v1.customers.update, customer.stripe_id,
              {"name": customer.name, "email": customer.email}, {"idempotency_key": idempotency_key})
    except StripeError as exc:
        return _record_failure(customer.pk, DETAILS, exc)
    _record_success(customer.pk, DETAILS)
    return ""


def ensure_stripe_customer(customer) -> str:
    """The customer's Stripe id, creating the Stripe customer (and storing the link) if it has none."""
    from customers.models import AuditEntry
    from customers.services import customer_stripe_link

    if customer.stripe_id:
        return customer.stripe_id
    # A new key after each unlink: within Stripe's 24 h key memory a re-created customer must not
    # replay the Stripe customer that was deleted.
    generation = AuditEntry.objects.filter(customer=customer, action="customer.stripe_unlink").order_by(
        "-id").values_list("id", flat=True).first() or 0
    params = {"name": customer.name, "metadata": {"customer_id": customer.customer_id, "env": customer.env}}
    if customer.email:
        params["email"] = customer.email
    created = _call(_client().v1.customers.create, params,
                    {"idempotency_key": _key("customer-create", customer.pk, generation)})
    linked = customer_stripe_link(customer=customer, stripe_id=created.id, expected="", actor=None,
                                  reason="Stripe customer created for checkout")
    return linked.stripe_id


def customer_delete_in_stripe(*, customer, actor=None) -> None:
    """Delete the customer's Stripe customer and unlink it here ("Also delete in Stripe").

    Call it after `customer_delete` committed. Raises StripeError when Stripe isn't connected or
    refuses; a Stripe customer that is already gone counts as deleted.
    """
    from customers.services import customer_stripe_link

    stripe_id = customer.stripe_id
    if not stripe_id:
        return
    try:
        _call(_client().v1.customers.delete, stripe_id)
    except StripeError as exc:
        if exc.code != "resource_missing":
            if exc.code != "stripe_not_connected":
                _record_failure(customer.pk, DELETE, exc)
            raise
    _record_success(customer.pk, DELETE)
    customer_stripe_link(customer=customer, stripe_id="", expected=stripe_id, actor=actor,
                         reason="Deleted in Stripe")


# --- coupons and discounts ----------------------------------------------------------------------

def coupon_params(reward) -> dict:
    """The Stripe coupon that stands for a discount reward."""
    if not reward.is_discount:
        raise ServiceError(f"{reward.name} is not a discount, so it has no Stripe coupon.", code="not_a_discount")
    params: dict = {"duration": COUPON_DURATION[reward.duration], "name": reward.name[:40],
                    "metadata": {"reward_id": reward.reward_id}}
    if reward.duration == "months":
        params["duration_in_months"] = reward.duration_months
    if reward.type == "percentage_discount":
        params["percent_off"] = format(Decimal(reward.value).quantize(Decimal("0.01")).normalize(), "f")
    else:
        params["amount_off"] = int(Decimal(reward.value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        params["currency"] = reward.currency
    return params


def coupon_for_reward(reward) -> str:
    """The reward's Stripe coupon id, creating the coupon the first time."""
    from autumn_admin.audit import audit_record
    from billing.models import Reward

    if reward.stripe_coupon_id:
        return reward.stripe_coupon_id
    params = coupon_params(reward)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]
    coupon = _call(_client().v1.coupons.create, params,
                   {"idempotency_key": _key("reward", reward.pk, "coupon", digest)})
    with transaction.atomic():
        stored = Reward.objects.filter(pk=reward.pk, stripe_coupon_id="").update(stripe_coupon_id=coupon.id)
        if stored:
            audit_record(actor=None, action="reward.stripe_coupon", target_type="reward", target_id=reward.reward_id,
                         after={"stripe_coupon_id": coupon.id})
    reward.refresh_from_db(fields=["stripe_coupon_id"])
    return reward.stripe_coupon_id


def active_discounts(customer, now=None) -> list:
    """The customer's discount rewards in force, newest first."""
    from billing.models import DISCOUNT_REWARD_TYPES, CustomerReward

    now = now or timezone.now()
    applied = CustomerReward.objects.filter(
        customer=customer, removed_at__isnull=True, reward__type__in=DISCOUNT_REWARD_TYPES,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).select_related("reward").order_by("-applied_at", "-id")
    return [cr.reward for cr in applied]


def discounts_changed(*, customer, reward, audit_entry) -> None:
    """Called inside reward_apply / reward_remove: bring the Stripe discounts in line once it commits."""
    if is_configured() and customer.stripe_id and reward.is_discount:
        transaction.on_commit(
            partial(push_discounts, customer_pk=customer.pk, idempotency_prefix=_key("rewards", audit_entry.pk)),
            robust=True,
        )


def push_discounts(*, customer_pk: int, idempotency_prefix: str) -> str:
    """Make the discounts of the customer's live Stripe subscriptions exactly its discount rewards
    (their coupons created as needed). Returns the error, or ""."""
    from billing.models import CustomerReward
    from customers.models import Customer

    customer = Customer.objects.filter(pk=customer_pk).first()
    if customer is None or not customer.stripe_id or not is_configured():
        return ""
    rewards = active_discounts(customer)
    try:
        coupons = [coupon_for_reward(r) for r in rewards]
        client = _client()
        listing = _call(client.v1.subscriptions.list, {"customer": customer.stripe_id, "limit": 100})
        for sub in _paged(listing):
            if sub["status"] not in LIVE_SUBSCRIPTION_STATUSES:
                continue
            _call(client.v1.subscriptions.update, sub["id"],
                  {"discounts": [{"coupon": c} for c in coupons] or ""},
                  {"idempotency_key": _key(idempotency_prefix, sub["id"])})
    except StripeError as exc:
        return _record_failure(customer.pk, DISCOUNTS, exc)
    CustomerReward.objects.filter(customer=customer, reward__in=rewards, removed_at__isnull=True).update(
        stripe_synced_at=timezone.now())
    _record_success(customer.pk, DISCOUNTS)
    return ""


# --- checkout -----------------------------------------------------------------------------------

def _line_items(product) -> tuple[list[dict], bool]:
    items, recurring = [], False
    for price in product.prices.all().order_by("id"):
        if price.type == "usage":
            # Usage is charged through a metered Stripe price; without one there is nothing to buy up front.
            if price.stripe_price_id:
                items.append({"price": price.stripe_price_id})
                recurring = True
            continue
        if price.interval != "one_off":
            recurring = True
        if price.stripe_price_id:
            items.append({"price": price.stripe_price_id, "quantity": 1})
            continue
        data = {"currency": price.currency, "unit_amount": price.amount,
                "product_data": {"name": product.name, "metadata": {"product_id": product.product_id}}}
        if price.interval != "one_off":
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
    client = _client()
    stripe_id = ensure_stripe_customer(customer)
    metadata = {"customer_id": customer.customer_id, "env": customer.env, "product_id": product.product_id,
                "product_version": str(product.version)}
    params: dict = {
        "mode": "subscription" if recurring else "payment", "customer": stripe_id, "line_items": items,
        "success_url": success_url, "cancel_url": cancel_url, "client_reference_id": customer.customer_id,
        "metadata": metadata,
    }
    if recurring:
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["invoice_creation"] = {"enabled": True, "invoice_data": {"metadata": metadata}}
    discounts = active_discounts(customer)
    if discounts:
        params["discounts"] = [{"coupon": coupon_for_reward(discounts[0])}]
    # The library's own key covers its retries; a new attempt is a new session.
    session = _call(client.v1.checkout.sessions.create, params)
    return session.url


# --- reading from Stripe ------------------------------------------------------------------------

def invoices_of(stripe_customer_id: str) -> Iterator[dict]:
    client = _client()
    return _paged(_call(client.v1.invoices.list, {"customer": stripe_customer_id, "limit": 100}))


def subscriptions_of(stripe_customer_id: str) -> Iterator[dict]:
    client = _client()
    return _paged(_call(client.v1.subscriptions.list,
                        {"customer": stripe_customer_id, "status": "all", "limit": 100}))


def retry_failed_push(customer) -> str:
    """Send again what the customer's last failed push was about. Returns the error, or ""."""
    from customers.models import AuditEntry

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

def event_from_webhook(payload: bytes, signature: str) -> dict:
    """The event a webhook carries, once its signature (and age) is verified against
    STRIPE_WEBHOOK_SECRET. Raises WebhookRejected otherwise."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookRejected("Stripe webhooks are not set up here (STRIPE_WEBHOOK_SECRET is empty).")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError:
        raise WebhookRejected("The Stripe-Signature header is missing, wrong or too old.")
    except ValueError:
        raise WebhookRejected("The body is not JSON.")
    except (TypeError, AttributeError, KeyError):
        raise WebhookRejected("The body is not a Stripe event.")
    data = event.to_dict()
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    if not (isinstance(data.get("id"), str) and data["id"] and isinstance(data.get("type"), str)
            and isinstance(data.get("created"), int) and isinstance(obj, dict)):
        raise WebhookRejected("The body is not a Stripe event.")
    return data
