"""The hot calls served lean: POST /v1/balances.check, /v1/balances.track, /v1/balances.batch_track and
the 1.2 /v1/check and /v1/track.

`answer(path, headers, body)` serves the common request from the raw request alone — the key matched and
hashed once, the body read by the API's own JSON rules (`_decoded`) and validated by the operation's own
pydantic schema, then the engine by key (billing/engine/run.py: one load statement that also finds the
key, the customer and the feature; decide; for a track one store statement), and the answer written once
as JSON. It needs nothing of Django's request cycle, so the WSGI application (autumn_admin/wsgi.py) calls
it before Django for these paths, and the view below calls it inside Django (what the tests' client and
runserver reach).

Every other request gets None and goes to the ninja operation at the same path, which answers it with the
one definition of every error shape, status code, request limit and the Idempotency-Key: a missing or
malformed key, a body that is not JSON or that the schema refuses, an Idempotency-Key, a key, customer or
feature not found (nothing is written then), an entity the customer doesn't have, a flag tracked, a track
by event name or at a timestamp, a check with send_event, a 1.2 track with an idempotency_key or
overage_behavior "reject".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import BaseModel, ValidationError

from autumn_admin.api.auth import ENV_OF_PREFIX, KEY_PATTERN, bearer_token
from autumn_admin.api.balances import batch_track_items
from autumn_admin.api.errors import ApiError, json_on_unexpected_error
from autumn_admin.api.main import _decoded, api
from autumn_admin.api.schemas.balances import BatchTrackItem, CheckParams, TrackParams, quantity_or_one
from autumn_admin.api.schemas.legacy import LegacyTrackParams
from autumn_admin.api.serializers.legacy import legacy_check_answer
from billing.engine import run as engine
from billing.shapes.balances import check_json, track_json
from customers.services.api_keys import api_key_hash

CONTENT_TYPE = "application/json; charset=utf-8"
Answer = tuple[int, bytes]


class _NotHere(Exception):
    """The request is not one the lean path serves: the operation answers it."""


def _key(headers: Mapping[str, str]) -> tuple[str, str]:
    """The hash and environment of a well-formed bearer key (else the operation answers the 401)."""
    scheme, _, raw = headers.get("authorization", "").partition(" ")
    match = KEY_PATTERN.match(raw.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        raise _NotHere
    return api_key_hash(match.group(0)), ENV_OF_PREFIX[match.group(1)]


def _params(schema: type[BaseModel], headers: Mapping[str, str], body: bytes) -> BaseModel:
    try:
        data = _decoded(body, headers.get("content-type", "").split(";")[0].strip()) if body.strip() else {}
        if not isinstance(data, dict) and schema is not _Batch:
            raise _NotHere
        return schema.model_validate(data)
    except (ApiError, ValidationError):
        raise _NotHere


def _check(key: tuple[str, str], params: CheckParams, *, legacy: bool) -> dict:
    if params.send_event:
        raise _NotHere  # a check that also tracks: the operation's (the same engine, locked)
    required = quantity_or_one(params.required_balance)
    done = engine.check_by_key(
        key_hash=key[0],
        env=key[1],
        customer_id=params.customer_id,
        feature_id=params.feature_id,
        required=required,
        now=timezone.now(),
        entity_id=params.entity_id,
    )
    if done is None:
        raise _NotHere
    customer, feature, result = done.keyed.customer, done.keyed.feature, done.check
    if legacy:
        return legacy_check_answer(customer=customer, feature=feature, result=result, required=required)
    return check_json(
        customer=customer,
        feature=feature,
        required=required,
        result=result,
        prices=done.keyed.rows.prices,
        entity_id=params.entity_id,
    )


def _track_one(key: tuple[str, str], params: TrackParams) -> engine.KeyedAnswer:
    if params.event_name is not None or params.timestamp is not None or not params.feature_id:
        raise _NotHere  # a track by event name or at another moment: the operation's
    done = engine.track_by_key(
        key_hash=key[0],
        env=key[1],
        customer_id=params.customer_id,
        feature_id=params.feature_id,
        value=quantity_or_one(params.value),
        properties=params.properties,
        now=timezone.now(),
        entity_id=params.entity_id,
    )
    if done is None:
        raise _NotHere
    return done


def _track(key: tuple[str, str], params: TrackParams) -> dict:
    done = _track_one(key, params)
    return track_json(
        customer=done.keyed.customer,
        feature=done.keyed.feature,
        value=quantity_or_one(params.value),
        balances=list(done.track.balances),
        reached=done.track.reached,
        prices=done.keyed.rows.prices,
        entity_id=params.entity_id,
    )


def _legacy_track(key: tuple[str, str], params: LegacyTrackParams) -> dict:
    if params.idempotency_key is not None or params.overage_behavior == "reject":
        raise _NotHere
    done = _track_one(key, params)
    return {"customer_id": done.keyed.customer.customer_id, "feature_id": done.keyed.feature.feature_id}


def _batch_track(key: tuple[str, str], items: list[BatchTrackItem]) -> dict:
    """Every item a common track (by feature id, no timestamp or idempotency key), all in one transaction;
    any other item, or one whose key, customer or feature is not found, leaves the whole batch (unwritten)
    to the operation. The items are drawn in the order of their customer and feature, whatever order they
    came in, so two batches over the same balances lock them in one order and never deadlock."""
    if any(item.idempotency_key is not None for item in items):
        raise _NotHere
    with transaction.atomic():
        for item in sorted(items, key=lambda item: (item.customer_id, item.feature_id or "")):
            _track_one(key, item)
    return {"success": True}


class _Batch:
    """The batch's schema, read as the operation reads it (`batch_track_items`)."""

    @staticmethod
    def model_validate(data):
        try:
            return batch_track_items(data)
        except (ApiError, NinjaValidationError):
            raise _NotHere


HOT: dict[str, tuple[type[BaseModel], Callable]] = {
    "balances.batch_track": (_Batch, _batch_track),
    "balances.check": (CheckParams, lambda key, p: _check(key, p, legacy=False)),
    "balances.track": (TrackParams, _track),
    "check": (CheckParams, lambda key, p: _check(key, p, legacy=True)),
    "track": (LegacyTrackParams, _legacy_track),
}
PATHS = {f"/v1/{path}" for path in HOT}


def too_big(length: int) -> bool:
    """Is a body of `length` bytes over the request limit (Django's, which the operation would apply)?"""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return length < 0 or (limit is not None and length > limit)


def key_env(headers: Mapping[str, str]) -> str | None:
    """The environment a well-formed bearer key names (for an error's body), else None."""
    try:
        return _key(headers)[1]
    except _NotHere:
        return None


def answer(path: str, headers: Mapping[str, str], body: bytes) -> Answer | None:
    """The answer to a POST of `body` to /v1/`path` with `headers` (lower-case names), or None for a
    request the operation answers (see the module)."""
    if path not in HOT or "idempotency-key" in headers or too_big(len(body)):
        return None
    schema, serve = HOT[path]
    try:
        key = _key(headers)
        return 200, json.dumps(serve(key, _params(schema, headers, body))).encode()
    except _NotHere:
        return None


@cache
def operation_at(path: str):
    """The ninja operation served at `path`."""
    for pattern in api.urls[0]:
        if hasattr(pattern, "resolve") and pattern.resolve(path) is not None:
            return pattern.callback
    raise LookupError(f"The API has no {path} operation.")


def served_lean(path: str):
    """The view at /v1/`path` inside Django: `answer` first, else the operation."""

    @csrf_exempt
    @json_on_unexpected_error
    def view(request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            try:
                body = request.body
            except RequestDataTooBig:
                body = None
            if body is not None:
                key = KEY_PATTERN.match(bearer_token(request))
                if key is not None:  # for an unexpected error's answer, which names the environment
                    request.api_key_env = ENV_OF_PREFIX[key.group(1)]
                headers = {name.lower(): value for name, value in request.headers.items()}
                done = answer(path, headers, body)
                if done is not None:
                    return HttpResponse(done[1], status=done[0], content_type=CONTENT_TYPE)
                if key is not None:
                    del request.api_key_env  # the operation checks the key and answers
        return operation_at(path)(request)

    view.__name__ = f"lean_{path.replace('.', '_')}"
    return view
