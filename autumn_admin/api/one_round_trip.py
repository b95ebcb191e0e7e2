"""A hot operation served in one round trip to the database when the request is the common one.

`answered_in_one_round_trip(path, fast)` is the view at /v1/<path>: a POST goes to `fast` first, which
answers the common request from one statement or returns None; every other request goes to the ninja
operation at the same path (after this view in the URLconf), which authenticates, validates, answers
errors and calls the general service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from autumn_admin.api.auth import ENV_OF_PREFIX, KEY_PATTERN, bearer_token
from autumn_admin.api.errors import ApiError, json_on_unexpected_error
from autumn_admin.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from autumn_admin.api.main import api, parse_json_body
from customers.services.api_keys import api_key_hash

FastPath = Callable[[HttpRequest], HttpResponse | None]


@dataclass
class KeyedRequest:
    """A request the one-round-trip path may answer: its secret key's hash and environment, and its body."""

    key_hash: str
    env: str
    params: BaseModel


def keyed_request(request: HttpRequest, schema: type[BaseModel]) -> KeyedRequest | None:
    """The key and body of a request without an Idempotency-Key (the operation keeps those), with a key of
    the right shape and a body that the operation's own schema accepts; None for any other request, which
    the operation then answers (with its error, where there is one)."""
    if IDEMPOTENCY_HEADER in request.headers:
        return None
    key = KEY_PATTERN.match(bearer_token(request))
    if key is None:
        return None
    try:
        params = schema.model_validate(parse_json_body(request))
    except (ApiError, ValidationError):
        return None
    return KeyedRequest(key_hash=api_key_hash(key.group(0)), env=ENV_OF_PREFIX[key.group(1)], params=params)


@cache
def operation_at(path: str):
    """The ninja operation served at `path`."""
    for pattern in api.urls[0]:
        if hasattr(pattern, "resolve") and pattern.resolve(path) is not None:
            return pattern.callback
    raise LookupError(f"The API has no {path} operation.")


def answered_in_one_round_trip(path: str, fast: FastPath):
    @csrf_exempt
    @json_on_unexpected_error
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            answer = fast(request)
            if answer is not None:
                return answer
        return operation_at(path)(request)

    return view
