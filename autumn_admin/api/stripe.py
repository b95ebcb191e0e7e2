"""Stripe, when it is connected. The gateway module is optional: without it we act as not connected."""

from __future__ import annotations

from django.conf import settings

from autumn_admin.api.errors import ApiError


def gateway():
    """The Stripe gateway module, or None when Stripe is not connected (no secret key, or no gateway)."""
    if not settings.STRIPE_SECRET_KEY:
        return None
    try:
        from billing import stripe_gateway
    except ImportError:
        return None
    return stripe_gateway


def stripe_failure(gw, exc: Exception) -> ApiError:
    return ApiError(502, f"Stripe refused the request: {exc}. Nothing was changed here.", "stripe_error")


def is_stripe_error(gw, exc: Exception) -> bool:
    error_class = getattr(gw, "StripeError", None)
    return error_class is not None and isinstance(exc, error_class)
