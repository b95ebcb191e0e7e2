"""Autumn's error body, `{"message", "code", "env"}`, for every refusal of the API."""

from __future__ import annotations

import json
import logging
from functools import wraps

from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from autumn_admin.api.schemas.common import NOT_SUPPORTED
from customers.errors import ServiceError

logger = logging.getLogger("autumn_admin.api")

# The services speak of one bad input; Autumn's clients know the plural.
_CODE_ALIASES = {"invalid_input": "invalid_inputs"}
INTERNAL_ERROR_MESSAGE = "Something went wrong on our side. Try again later."


class ApiError(Exception):
    """A refusal of the API itself (auth, body, idempotency, lookups), answered as Autumn does."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def request_env(request: HttpRequest) -> str | None:
    api_key = getattr(request, "api_key", None)
    # The one-round-trip track checks its key inside its statement: until then, the env its key names.
    return api_key.env if api_key is not None else getattr(request, "api_key_env", None)


def error_body(message: str, code: str, env: str | None) -> bytes:
    """Autumn's error body: what went wrong, its code, and the environment of the key that asked."""
    return json.dumps({"message": message, "code": _CODE_ALIASES.get(code, code), "env": env}).encode()


def error_response(request: HttpRequest, status: int, message: str, code: str) -> HttpResponse:
    body = error_body(message, code, request_env(request))
    return HttpResponse(body, status=status, content_type="application/json")


def internal_error_response(request: HttpRequest) -> HttpResponse:
    """The 500 of the API: Autumn's error body, never an HTML page, whatever DEBUG says."""
    return error_response(request, 500, INTERNAL_ERROR_MESSAGE, "internal_error")


def _unexpected_error_response(request: HttpRequest) -> HttpResponse:
    """The 500 of an exception nothing expected, logged with its traceback (call it inside `except`)."""
    logger.exception("Unexpected error in %s %s", request.method, request.path)
    return internal_error_response(request)


def json_on_unexpected_error(view):
    """Around the API's own views and ninja's operations: an unexpected exception is logged with its
    traceback and answered as Autumn's 500 (Django would answer HTML: its debug page, or handler500)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Exception:
            return _unexpected_error_response(request)

    return wrapper


def _location(loc) -> str:
    # ninja prefixes the source ("body", "query", "path") and the parameter name.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    if parts and parts[0] == "params":  # every operation names its body `params`
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(error: dict) -> str:
    msg = str(error.get("msg", "is invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if error.get("type") == "missing":
        msg = "is required"
    return msg


def validation_message(errors: list[dict]) -> str:
    """One sentence naming every field at fault, e.g. `customer_id: is required; value: must be a number`."""
    seen = []
    for error in errors[:10]:
        text = f"{_location(error.get('loc', ()))}: {_message(error)}"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) or "The request is invalid."


def install_handlers(api) -> None:
    """Every exception an operation raises, answered with Autumn's error body."""

    @api.exception_handler(ApiError)
    @api.exception_handler(ServiceError)
    def _refusal(request, exc: ApiError | ServiceError):
        return error_response(request, exc.status, exc.message, exc.code)

    @api.exception_handler(ValidationError)
    def _validation_error(request, exc: ValidationError):
        # A field this server does not implement yet (schemas.common.not_supported) is named by its own code.
        code = NOT_SUPPORTED if any(e.get("type") == NOT_SUPPORTED for e in exc.errors) else "invalid_inputs"
        return error_response(request, 422, validation_message(exc.errors), code)

    @api.exception_handler(AuthenticationError)
    def _auth_error(request, exc: AuthenticationError):
        return error_response(request, 401, "Secret key not found in Authorization header", "no_secret_key")

    @api.exception_handler(HttpError)
    def _http_error(request, exc: HttpError):
        return error_response(request, exc.status_code, exc.message, "invalid_request")

    @api.exception_handler(Http404)
    def _not_found(request, exc: Http404):
        return error_response(request, 404, str(exc) or "Not found.", "not_found")

    @api.exception_handler(Exception)
    def _unexpected(request, exc: Exception):
        return _unexpected_error_response(request)
