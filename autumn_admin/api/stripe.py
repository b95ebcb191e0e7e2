"""Stripe, when the environment is connected (billing.stripe_gateway does the talking)."""

from __future__ import annotations

from autumn_admin.api.errors import ApiError
from billing import stripe_gateway


def gateway(env: str):
    """The Stripe gateway module, or None when `env` (the API key's and its customers' environment)
    is not connected to Stripe. The gateway then serves that environment's customers with its key only."""
    return stripe_gateway if stripe_gateway.is_configured(env) else None


def is_stripe_error(gw, exc: Exception) -> bool:
    """Whether `exc` is the gateway's refusal (its StripeError), as opposed to a failure of ours."""
    return isinstance(exc, gw.StripeError)


def stripe_failure(exc: stripe_gateway.StripeError) -> ApiError:
    """Stripe's refusal as Autumn's error body, with the gateway's status (502, 503 or 504)."""
    return ApiError(
        exc.status,
        f"Stripe refused the request: {exc.message} Nothing was changed here.",
        exc.code if exc.code == "stripe_not_connected" else "stripe_error",
    )
