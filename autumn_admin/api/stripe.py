"""Stripe, when the environment is connected (billing.stripe_gateway does the talking)."""

from __future__ import annotations

from autumn_admin.api.errors import ApiError
from billing.stripe_io import config as stripe_gateway


def gateway(env: str):
    """The Stripe gateway module, or None when `env` (the API key's and its customers' environment)
    is not connected to Stripe. The gateway then serves that environment's customers with its key only."""
    return stripe_gateway if stripe_gateway.is_configured(env) else None


def is_stripe_error(gw, exc: Exception) -> bool:
    error_class = getattr(gw, "StripeError", None)
    return error_class is not None and isinstance(exc, error_class)


def stripe_failure(exc: Exception) -> ApiError:
    """Stripe's refusal as Autumn's error body: the gateway's status (502 unless it says otherwise)."""
    code = getattr(exc, "code", "")
    return ApiError(
        getattr(exc, "status", 502),
        f"Stripe refused the request: {getattr(exc, 'message', str(exc))} Nothing was changed here.",
        code if code == "stripe_not_connected" else "stripe_error",
    )
