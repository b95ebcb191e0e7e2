"""A Stripe webhook's body checked before anything is applied: its signature, verified with each
environment's signing secret (the one that verifies names the environment), and its envelope.
What the event then does is `sync.process_event`'s."""

from __future__ import annotations

import json

import stripe

from billing.stripe_inbound.fields import MAX_BIG_INT
from billing.stripe_io.config import WEBHOOK_SETTING, webhook_secret


class WebhookRejected(Exception):
    """A webhook body that is not a genuine, recent Stripe event."""


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


def _signed_for(text: str, signature: str, secrets: dict[str, str]) -> str:
    """The environment whose secret verifies the signature (and its age)."""
    for env, secret in secrets.items():
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
        except stripe.SignatureVerificationError:
            continue
        return env
    raise WebhookRejected("The Stripe-Signature header is missing, wrong or too old.")


def event_from_webhook(payload: bytes, signature: str) -> tuple[dict, str]:
    """The event a webhook carries and the environment whose signing secret verified it (and its
    age): each environment's secret is tried. Raises WebhookRejected when none verifies, or when the
    body is not a Stripe event. Whether the event is of that environment is for sync.process_event."""
    secrets = {env: secret for env in WEBHOOK_SETTING if (secret := webhook_secret(env))}
    if not secrets:
        raise WebhookRejected(
            f"Stripe webhooks are not set up here ({' and '.join(WEBHOOK_SETTING.values())} are empty)."
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("The body is not JSON.")
    signed_for = _signed_for(text, signature, secrets)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookRejected("The body is not JSON.")
    if not _is_event(data):
        raise WebhookRejected("The body is not a Stripe event.")
    return data, signed_for
