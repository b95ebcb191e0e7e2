"""The REST API at /v1/, wire-compatible with Autumn's official clients (autumn-sdk, autumn-js).

Each request passes, in order: the secret key (401), the JSON body (400), the Idempotency-Key
(replay or 409), ninja's validation of the body (422), then the operation, which calls the same
services as the dashboard.
"""

from __future__ import annotations

import json
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.parser import Parser

from autumn_admin.api import (
    balances,
    billing,
    catalogue,
    catalogue_sync,
    cli,
    customers,
    entities,
    events,
    invoices,
    keys,
    legacy,
    referrals,
    rewards,
)
from autumn_admin.api.auth import SecretKeyAuth, authenticate
from autumn_admin.api.errors import ApiError, error_response, install_handlers, json_on_unexpected_error
from autumn_admin.api.idempotency import run_idempotently
from customers.models import ApiKeyKind

BODY_METHODS = ("POST", "PUT", "PATCH")
LIST_BODIES = {"/v1/balances.batch_track"}  # the operations whose body is a JSON array


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _check_text(value, depth: int = 0) -> None:
    """Text the database can't store (NUL, lone surrogates) is refused here, not by a 500 later."""
    if depth > 64:
        raise ValueError("the JSON is nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain the NUL character (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (a lone surrogate was found)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, depth + 1)
            _check_text(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_text(item, depth + 1)


def _decoded(raw: bytes, content_type: str):
    """A non-empty body as JSON, or an ApiError 400."""
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(
            400,
            f"Send the body as JSON with Content-Type: application/json (got {content_type or 'no Content-Type'!r}).",
            "invalid_request",
        )
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        _check_text(data)
    except RecursionError:
        raise ApiError(400, "The body is not valid JSON: it is nested too deeply.", "invalid_request")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError(400, f"The body is not valid JSON: {exc}.", "invalid_request")
    return data


def parse_json_body(request: HttpRequest):
    """The request's JSON object ({} for an empty body), or an ApiError 400 saying what is wrong with it."""
    if hasattr(request, "api_json"):
        return request.api_json
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(400, "The request body is too large.", "invalid_request")
    data = _decoded(raw, request.content_type or "") if raw.strip() else {}
    if not isinstance(data, dict) and not (isinstance(data, list) and request.path in LIST_BODIES):
        raise ApiError(400, f"The body must be a JSON object, not {type(data).__name__}.", "invalid_request")
    request.api_json = data
    return data


def _scoped_to_token_customer(request: HttpRequest, data: dict) -> dict:
    """A customer's access token acts on its own customer only: whatever customer_id the body names, the
    operation reads the token's (as Autumn's server forces it)."""
    data = {**data, "customer_id": request.api_key.customer.customer_id}
    request.api_json = data
    request._body = json.dumps(data).encode()
    return data


class BodyParser(Parser):
    def parse_body(self, request: HttpRequest):
        return parse_json_body(request)


def api_request(run):
    """Around every operation: key, body and idempotency, before ninja validates anything. ninja answers
    an operation's own unexpected errors (errors.install_handlers); these steps run outside it."""

    @json_on_unexpected_error
    @wraps(run)
    def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            authenticate(request)
            data = None
            if request.method in BODY_METHODS:
                data = parse_json_body(request)
                if not request.body.strip():
                    # ninja reads an empty body as "no body at all"; Autumn's clients mean {}.
                    request._body = b"{}"
                if request.api_key.kind == ApiKeyKind.ACCESS:
                    data = _scoped_to_token_customer(request, data)
            return run_idempotently(request, data, lambda: run(request, *args, **kwargs))
        except ApiError as exc:
            return error_response(request, exc.status, exc.message, exc.code)

    return wrapper


api = NinjaAPI(
    title="Billing admin API (Autumn-compatible)",
    version="2.5.0",
    description=(
        "The subset of Autumn's API that the official clients (autumn-sdk, autumn-js) use, plus the older "
        "REST forms of customers. Authenticate with `Authorization: Bearer am_sk_test_…` (sandbox) or "
        "`am_sk_live_…` (live). Send `Idempotency-Key` on a POST to make retries safe. Errors are "
        '`{"message", "code", "env"}`.'
    ),
    urls_namespace="api",
    auth=SecretKeyAuth(),
    parser=BodyParser(),
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_decorator(api_request, mode="view")
install_handlers(api)

api.add_router("", cli.router)  # first: its /customers/list is not a customer id
api.add_router("", customers.router)
api.add_router("", balances.router)
api.add_router("", events.router)
api.add_router("", invoices.router)
api.add_router("", billing.router)
api.add_router("", catalogue.router)
api.add_router("", catalogue_sync.router)
api.add_router("", rewards.router)
api.add_router("", referrals.router)
api.add_router("", entities.router)
api.add_router("", keys.router)
api.add_router("", legacy.router)
