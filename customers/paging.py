"""Keyset paging on (time, id): the one cursor format and the one page query, for the dashboard and the API.

A cursor is "<microseconds since 1970>_<id>" of the last row shown: the next page starts right after it,
exactly, whatever was inserted meanwhile. Callers turn `InvalidCursor` into their own 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CURSOR_LENGTH = 64


class InvalidCursor(ValueError):
    """A cursor this project never gave out."""


def encode_cursor(moment: datetime, pk: int) -> str:
    return f"{(moment - _EPOCH) // timedelta(microseconds=1)}_{pk}"


def decode_cursor(raw: str) -> tuple[datetime, int]:
    try:
        if len(raw) > MAX_CURSOR_LENGTH:
            raise ValueError(raw)
        micros, pk = raw.split("_", 1)
        return _EPOCH + timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError):
        raise InvalidCursor(raw[:40])


@dataclass
class Page:
    items: list
    next_cursor: str | None
    before: str | None = None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def keyset_page(qs: QuerySet, *, time_field: str, cursor: str | None, limit: int, ascending: bool = False) -> Page:
    """Up to `limit` rows after `cursor` (none: the first page), newest first unless `ascending`."""
    if cursor:
        moment, pk = decode_cursor(cursor)
        op = "gt" if ascending else "lt"
        qs = qs.filter(Q(**{f"{time_field}__{op}": moment}) | Q(**{time_field: moment, f"pk__{op}": pk}))
    order = (time_field, "pk") if ascending else (f"-{time_field}", "-pk")
    items = list(qs.order_by(*order)[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(getattr(items[-1], time_field), items[-1].pk) if more else None
    return Page(items=items, next_cursor=next_cursor, before=cursor)
