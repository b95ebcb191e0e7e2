"""Secret keys: `Authorization: Bearer am_sk_test_…` acts on sandbox, `am_sk_live_…` on live. A customer's
token (`am_jwt_…`, from keys.mint) reaches only Autumn's customer-token routes: an access token its customer's
check, track, customers.get and events (api_request then forces its customer_id), a refresh token only
keys.refresh."""

from __future__ import annotations

import re

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from autumn_admin.api.errors import ApiError
from customers.models import ApiKey, ApiKeyKind, Env
from customers.services.api_keys import API_KEY_PREFIXES, CUSTOMER_TOKEN_PREFIX, api_key_hash, api_key_mark_used

KEY_PATTERN = re.compile(r"^am_sk_(test|live)_[A-Za-z0-9_-]{40}$")
ENV_OF_PREFIX = {"test": Env.SANDBOX, "live": Env.LIVE}
TOKEN_PATTERN = re.compile(r"^am_jwt_[A-Za-z0-9_-]{40}$")
# Autumn's allowlists of a customer's tokens (its server's customerJwtMiddleware), less entities.get (not yet
# scoped to a token's customer). Everything else answers 403.
TOKEN_ROUTES = {
    ApiKeyKind.ACCESS: frozenset(
        f"POST /v1/{op}"
        for op in (
            "check",
            "track",
            "balances.check",
            "balances.track",
            "customers.get",
            "events.list",
            "events.aggregate",
        )
    ),
    ApiKeyKind.REFRESH: frozenset({"POST /v1/keys.refresh"}),
}


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
    if raw.startswith(CUSTOMER_TOKEN_PREFIX):
        return _authenticate_token(request, raw)
    match = KEY_PATTERN.match(raw)
    if not match:
        raise ApiError(401, f"Invalid secret key: {_mask(raw)}", "invalid_secret_key")
    api_key = ApiKey.objects.filter(key_hash=api_key_hash(raw), kind=ApiKeyKind.SECRET).first()
    env = ENV_OF_PREFIX[match.group(1)]
    if api_key is None or api_key.env != env or not raw.startswith(API_KEY_PREFIXES[env]):
        raise ApiError(401, f"Invalid secret key: {_mask(raw)}", "invalid_secret_key")
    if api_key.revoked_at is not None:
        raise ApiError(401, f"This secret key was revoked: {_mask(raw)}", "invalid_secret_key")
    api_key_mark_used(api_key=api_key)
    request.api_key = api_key
    return api_key


def _authenticate_token(request: HttpRequest, raw: str) -> ApiKey:
    """A customer's token, live (not revoked, rotated or expired, its customer not deleted) and on a route its
    kind reaches; else a 401, or a 403 naming the route."""
    token = None
    if TOKEN_PATTERN.match(raw):
        token = (
            ApiKey.objects.filter(key_hash=api_key_hash(raw), kind__in=list(TOKEN_ROUTES))
            .select_related("customer")
            .first()
        )
    if (
        token is None
        or token.revoked_at is not None
        or (token.expires_at is not None and token.expires_at <= timezone.now())
        or token.customer.deleted_at is not None
    ):
        raise ApiError(401, "Invalid or expired customer token", "invalid_request")
    route = f"{request.method} {request.path}"
    if route not in TOKEN_ROUTES[token.kind]:
        request.api_key_env = token.env  # the refusal says whose environment the token is of
        raise ApiError(403, f"Endpoint {route} is not accessible with this customer token", "invalid_request")
    api_key_mark_used(api_key=token)
    request.api_key = token
    return token


class SecretKeyAuth(HttpBearer):
    """Declares the bearer scheme in the OpenAPI document; the check itself is `authenticate`."""

    openapi_description = "A secret key: am_sk_test_… for sandbox data, am_sk_live_… for live data."

    def __call__(self, request: HttpRequest):
        return authenticate(request)

    def authenticate(self, request: HttpRequest, token: str):  # pragma: no cover - __call__ does the work
        return authenticate(request)
