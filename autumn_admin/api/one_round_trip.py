"""A hot operation served in one round trip to the database when the request is the common one.

`answered_in_one_round_trip(path, fast)` is the view at /v1/<path>: a POST goes to `fast` first, which
answers the common request from one statement or returns None; every other request goes to the ninja
operation at the same path (after this view in the URLconf), which authenticates, validates, answers
errors and calls the general service.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from autumn_admin.api.errors import json_on_unexpected_error
from autumn_admin.api.main import api

FastPath = Callable[[HttpRequest], HttpResponse | None]


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
