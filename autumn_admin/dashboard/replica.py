"""The dashboard's read-only pages read from a streaming replica (DATABASE_REPLICA_URL), everything else
from the primary.

- `reads_from_replica` marks a view whose GET only reads: the customers list and its search, the
  export, the customer page and its sections. Only inside such a view, and only for our own tables
  (customers, billing), does `ReplicaRouter` answer "replica" for a read.
- Everything else reads the primary: every write; every read inside a transaction on the primary (the
  services lock and read their rows there); the rest of a request once it has written (the customer
  page's lazy balance reset); the API, the admin, login and sessions.
- Read-your-writes: a request that changed something (any POST, or a write during a page) sets a
  cookie telling the dashboard to read the primary for REPLICA_READ_YOUR_WRITES_SECONDS, so the person
  who made a change sees it on the next page however far the replica lags. The cookie only ever
  moves that person's reads to the primary, so it needs no signature.

Without DATABASE_REPLICA_URL there is no router and no middleware (settings.py): nothing changes.
"""

from __future__ import annotations

import functools
import time
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
ROUTED_APPS = frozenset({"customers", "billing"})
COOKIE = "reads_primary_until"
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class _Request:
    """What the router knows of the request being served."""

    sticky: bool  # the person changed something a moment ago: read the primary
    on_replica: bool = False  # inside a view that only reads
    wrote: bool = False  # this request wrote to our tables


_current: ContextVar[_Request | None] = ContextVar("replica_request", default=None)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        state = _current.get()
        if (
            state is not None
            and state.on_replica
            and not state.wrote
            and model._meta.app_label in ROUTED_APPS
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        state = _current.get()
        if state is not None and model._meta.app_label in ROUTED_APPS:
            state.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same rows on both servers

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # the replica follows the primary's schema


def _sticky(request) -> bool:
    try:
        return float(request.COOKIES.get(COOKIE, "0")) > time.time()
    except ValueError:
        return False


class ReadYourWritesMiddleware:
    """Tracks the request for the router, and after a change sends the person to the primary for a while."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        state = _Request(sticky=_sticky(request))
        token = _current.set(state)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        if state.wrote or request.method not in SAFE_METHODS:
            seconds = settings.REPLICA_READ_YOUR_WRITES_SECONDS
            response.set_cookie(
                COOKIE,
                f"{time.time() + seconds:.3f}",
                max_age=seconds,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response


def _streamed_on_replica(content, state: _Request):
    """The chunks of a streamed response, each read with `state` as the request's (set and reset around
    each chunk: the server iterates the response after the middleware has returned)."""
    chunks = iter(content)
    while True:
        token = _current.set(state)
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        finally:
            _current.reset(token)
        yield chunk


def reads_from_replica(view):
    """Serve this read-only view's GET from the replica, unless the person has just changed something."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        state = _current.get()
        if state is None or state.sticky or request.method not in SAFE_METHODS:
            return view(request, *args, **kwargs)
        state.on_replica = True
        try:
            response = view(request, *args, **kwargs)
        finally:
            state.on_replica = False
        if response.streaming:  # an export reads its rows while it is sent
            response.streaming_content = _streamed_on_replica(
                response.streaming_content, _Request(sticky=False, on_replica=True)
            )
        return response

    return wrapped
