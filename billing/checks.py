"""Billing's Django system checks: they run before `runserver`, `migrate` and `check` go on."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from billing.stripe_io.config import configured_secrets


@checks.register(checks.Tags.security)
def stripe_keys(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Each environment its own Stripe mode: a key whose prefix names the other mode (or none), and legacy
    variables that contradict the new ones, stop the app, with what to change and never the secret itself."""
    try:
        configured_secrets()
    except ImproperlyConfigured as refused:
        return [checks.Error(str(refused), id="billing.E001")]
    return []
