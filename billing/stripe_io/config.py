"""Which Stripe key and webhook signing secret each environment uses: settings.py reads the variables as they
are, this module looks them up per environment for the rest of the package, and Django's system checks
(`billing.E001`, billing/checks.py) refuse a key of the wrong mode or a contradiction before the app serves.

Sandbox talks only to Stripe's test mode and live only to its live mode, each with its own secret key
and webhook signing secret. A key whose prefix names the other mode, or no mode, stops the app from
starting. STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, from before each environment had its own, still
work: for the one environment the key's prefix names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_PREFIXES = {"sandbox": ("sk_test_", "rk_test_"), "live": ("sk_live_", "rk_live_")}
MODE = {"sandbox": "test", "live": "live"}
KEY_SETTING = {"sandbox": "STRIPE_TEST_SECRET_KEY", "live": "STRIPE_LIVE_SECRET_KEY"}
WEBHOOK_SETTING = {"sandbox": "STRIPE_TEST_WEBHOOK_SECRET", "live": "STRIPE_LIVE_WEBHOOK_SECRET"}
LEGACY_KEY, LEGACY_WEBHOOK = "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"


def secret_key(env: str) -> str:
    """The Stripe secret key of an environment ("" when it has none): its own setting, else the legacy
    STRIPE_SECRET_KEY when that key's prefix names this environment. Unknown environments raise KeyError."""
    return getattr(settings, KEY_SETTING[env]) or _legacy(LEGACY_KEY, env)


def is_configured(env: str) -> bool:
    """Whether the environment is connected to Stripe (has its key)."""
    return bool(secret_key(env))


def webhook_secret(env: str) -> str:
    """The signing secret of the environment's Stripe webhook endpoint ("" when it has none): its own setting,
    else the legacy STRIPE_WEBHOOK_SECRET when STRIPE_SECRET_KEY names this environment."""
    return getattr(settings, WEBHOOK_SETTING[env]) or _legacy(LEGACY_WEBHOOK, env)


def _legacy(name: str, env: str) -> str:
    """A legacy setting's value for the one environment the legacy key's prefix names, else ""."""
    return getattr(settings, name, "") if key_env(getattr(settings, LEGACY_KEY, "")) == env else ""


def configured_secrets() -> dict[str, str]:
    """The four per-environment settings as `stripe_secrets` settles them from the settings as they are
    (ImproperlyConfigured for what the system check refuses)."""
    names = (*KEY_SETTING.values(), *WEBHOOK_SETTING.values(), LEGACY_KEY, LEGACY_WEBHOOK)
    return stripe_secrets({name: getattr(settings, name, "") or "" for name in names})


def key_env(key: str) -> str | None:
    """The environment a Stripe secret key's prefix names ("sandbox" for test mode), or None."""
    return next((env for env, prefixes in KEY_PREFIXES.items() if key.startswith(prefixes)), None)


def _mode_of(name: str, key: str) -> str:
    env = key_env(key)
    if env is None:
        # Never repeat a secret in a message: a Stripe-looking prefix is all it shows.
        head = re.match(r"[a-z]{2,5}_[a-z]{2,5}_", key)
        said = f"it starts with {head.group()!r}" if head else "it has no Stripe key prefix"
        raise ImproperlyConfigured(
            f"{name} is not a Stripe secret key: {said}, not sk_test_/rk_test_ (test mode) or "
            "sk_live_/rk_live_ (live mode)."
        )
    return env


def stripe_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """STRIPE_TEST_SECRET_KEY, STRIPE_LIVE_SECRET_KEY, STRIPE_TEST_WEBHOOK_SECRET and
    STRIPE_LIVE_WEBHOOK_SECRET as the settings hold them ("" when not set), from `environ`.
    Raises ImproperlyConfigured, with what to change, for a key of the wrong mode (or of none) and for
    a legacy variable that says something else than the new one of its environment."""

    def read(name: str) -> str:
        return (environ.get(name) or "").strip()

    keys = {env: read(name) for env, name in KEY_SETTING.items()}
    hooks = {env: read(name) for env, name in WEBHOOK_SETTING.items()}
    for env, key in keys.items():
        if key and (found := _mode_of(KEY_SETTING[env], key)) != env:
            raise ImproperlyConfigured(
                f"{KEY_SETTING[env]} must be a {MODE[env]}-mode key ({' or '.join(p + '…' for p in KEY_PREFIXES[env])}"
                f"), but it is a {MODE[found]}-mode key: {env} talks to Stripe's {MODE[env]} mode only. "
                f"Put the {MODE[found]}-mode key in {KEY_SETTING[found]}."
            )
    _fill_from_legacy(keys, hooks, legacy_key=read(LEGACY_KEY), legacy_hook=read(LEGACY_WEBHOOK))
    if hooks["sandbox"] and hooks["sandbox"] == hooks["live"]:
        raise ImproperlyConfigured(
            f"{WEBHOOK_SETTING['sandbox']} and {WEBHOOK_SETTING['live']} are the same secret. Stripe signs "
            "test-mode and live-mode events with the secrets of two different endpoints: set each to its own."
        )
    return {
        **{KEY_SETTING[env]: key for env, key in keys.items()},
        **{WEBHOOK_SETTING[env]: hook for env, hook in hooks.items()},
    }


def _fill_from_legacy(keys: dict[str, str], hooks: dict[str, str], *, legacy_key: str, legacy_hook: str) -> None:
    """STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET) put in the environment the key's prefix names,
    unless its new variable says otherwise."""
    if not legacy_key:
        if legacy_hook:
            raise ImproperlyConfigured(
                f"{LEGACY_WEBHOOK} is the signing secret of the environment {LEGACY_KEY} names, and {LEGACY_KEY} "
                f"is not set: use {WEBHOOK_SETTING['sandbox']} or {WEBHOOK_SETTING['live']} instead."
            )
        return
    env = _mode_of(LEGACY_KEY, legacy_key)
    if keys[env] and keys[env] != legacy_key:
        raise ImproperlyConfigured(
            f"{LEGACY_KEY} and {KEY_SETTING[env]} both set the {env} Stripe key, to different keys. "
            f"Keep {KEY_SETTING[env]} and remove {LEGACY_KEY}."
        )
    keys[env] = legacy_key
    if legacy_hook:
        if hooks[env] and hooks[env] != legacy_hook:
            raise ImproperlyConfigured(
                f"{LEGACY_WEBHOOK} and {WEBHOOK_SETTING[env]} both set the {env} webhook signing secret, to "
                f"different secrets. Keep {WEBHOOK_SETTING[env]} and remove {LEGACY_WEBHOOK}."
            )
        hooks[env] = legacy_hook
