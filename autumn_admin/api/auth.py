"""Secret keys: `Authorization: Bearer am_sk_test_…` acts on sandbox, `am_sk_live_…` on live."""

from __future__ import annotations

import re

from django.http import HttpRequest
from ninja.security import HttpBearer

from autumn_admin.api.errors import ApiError
from customers.models import ApiKey, Env
from customers.services.api_keys import API_KEY_PREFIXES, api_key_hash, api_key_mark_used

KEY_PATTERN = re.compile(r"^am_sk_(test|live)_[A-Za-z0-9_-]{40}$")
ENV_OF_PREFIX = {"test": Env.SANDBOX, "live": Env.LIVE}


def _mask(raw: str) -> str:
    return raw[:15] + "*" * max(0, min(len(raw), 60) - 15)


def bearer_token(request: HttpRequest) -> str:
    """The token of an `Authorization: Bearer …` header, or "" when there is none."""
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    return raw.strip() if scheme.lower() == "bearer" else ""


def authenticate(request: HttpRequest) -> ApiKey:
    """The active key of the request, or an ApiError 401 with Autumn's code. Cached on the request."""
    cached = getattr(request, "api_key", None)
    if cached is not None:
        return cached
    raw = bearer_token(request)
    if not raw:
        raise ApiError(401, "Secret key not found in Authorization header", "no_secret_key")
    match = KEY_PATTERN.match(raw)
    if not match:
        raise ApiError(401, f"Invalid secret key: {_mask(raw)}", "invalid_secret_key")
    api_key = ApiKey.objects.filter(key_hash=api_key_hash(raw)).first()
    env = ENV_OF_PREFIX[match.group(1)]
    if api_key is None or api_key.env != env or not raw.startswith(API_KEY_PREFIXES[env]):
        raise ApiError(401, f"Invalid secret key: {_mask(raw)}", "invalid_secret_key")
    if api_key.revoked_at is not None:
        raise ApiError(401, f"This secret key was revoked: {_mask(raw)}", "invalid_secret_key")
    api_key_mark_used(api_key=api_key)
    request.api_key = api_key
    return api_key


class SecretKeyAuth(HttpBearer):
    """Declares the bearer scheme in the OpenAPI document; the check itself is `authenticate`."""

    openapi_description = "A secret key: am_sk_test_… for sandbox data, am_sk_live_… for live data."

    def __call__(self, request: HttpRequest):
        return authenticate(request)

    def authenticate(self, request: HttpRequest, token: str):  # pragma: no cover - __call__ does the work
        return authenticate(request)
