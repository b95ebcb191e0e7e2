"""`Idempotency-Key` on any POST: a retry with the same key and body gets the first answer again.

The record is inserted, in its own transaction, *before* the work runs: the unique constraint on
(api_key, key) then serialises concurrent requests with one key. The first does the work; the
others wait for its answer and replay it, or are told it is still in progress.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from autumn_admin.api.errors import ApiError
from customers.idempotency import KEEP_FOR
from customers.models import ApiKey, IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
WAIT_FOR_FIRST = 5.0  # seconds a concurrent retry waits for the first request's answer
POLL_EVERY = 0.05


def request_fingerprint(request: HttpRequest, data) -> str:
    """Same method, path and JSON body (whatever its whitespace or key order) → same fingerprint."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def _claim(api_key: ApiKey, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    # After KEEP_FOR a key is forgotten, and using it again starts a new request.
    IdempotencyRecord.objects.filter(api_key=api_key, key=key, created_at__lt=timezone.now() - KEEP_FOR).delete()
    for _ in range(3):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(api_key=api_key, key=key, request_hash=fingerprint)
            return record, True
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
            if existing is not None:
                return existing, False
            # The first request failed and let go of the key between our insert and our read: try again.
    raise ApiError(409, "This Idempotency-Key is busy; retry the request.", "idempotency_key_in_use")


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body or b""), status=record.status_code, content_type="application/json"
    )
    response[REPLAYED_HEADER] = "true"
    return response


def _answer_to_retry(record: IdempotencyRecord, fingerprint: str) -> HttpResponse:
    if record.request_hash != fingerprint:
        raise ApiError(
            409,
            f"This {HEADER} was already used for a different request; use a new key for a new request.",
            "idempotency_key_reused",
        )
    deadline = time.monotonic() + WAIT_FOR_FIRST
    while record.status_code is None:
        if time.monotonic() >= deadline:
            raise ApiError(
                409,
                f"A request with this {HEADER} is still in progress; retry it shortly.",
                "idempotency_request_in_progress",
            )
        time.sleep(POLL_EVERY)
        record = IdempotencyRecord.objects.filter(pk=record.pk).first()
        if record is None:
            raise ApiError(
                409,
                f"The first request with this {HEADER} failed; retry the request.",
                "idempotency_request_failed",
            )
    return _replay(record)


def idempotency_key_of(request: HttpRequest) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None or request.method != "POST":
        return None
    key = raw.strip()
    if not key or len(key) > KEY_MAX_LENGTH:
        raise ApiError(400, f"{HEADER} must be 1 to {KEY_MAX_LENGTH} characters.", "invalid_idempotency_key")
    return key


def run_idempotently(request: HttpRequest, data, run: Callable[[], HttpResponse]) -> HttpResponse:
    """Run the request once per key: store its answer, or replay the stored one."""
    key = idempotency_key_of(request)
    if key is None:
        return run()
    fingerprint = request_fingerprint(request, data)
    record, created = _claim(request.api_key, key, fingerprint)
    if not created:
        return _answer_to_retry(record, fingerprint)
    try:
        response = run()
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    if response.status_code >= 500:
        # Our failure, not an answer: let a retry do the work.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
    else:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code, response_body=response.content
        )
    return response
