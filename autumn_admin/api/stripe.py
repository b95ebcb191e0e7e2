"""Stripe's refusals as the API answers them (billing/stripe_io does the talking)."""

from __future__ import annotations

from autumn_admin.api.errors import ApiError
from billing.stripe_io.client import StripeError


def stripe_failure(exc: StripeError) -> ApiError:
    """Stripe's refusal as Autumn's error body, with the gateway's status (502, 503 or 504)."""
    return ApiError(
        exc.status,
        f"Stripe refused the request: {exc.message} Nothing was changed here.",
        exc.code if exc.code == "stripe_not_connected" else "stripe_error",
    )
