"""Stale dashboard forms: a form carries the values it showed, and a save over a newer value is refused.

Services compare what a form saw with what is stored while they hold the row lock, and raise
`StaleForm` naming what changed, who changed it (from the audit trail) and the value now.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.db.models import QuerySet

from customers.errors import Conflict
from customers.formatting import format_ago
from customers.models import AuditEntry

MISSING = object()
"""A metadata key or a value that isn't there, unlike one whose value is null."""

# How far back the trail is read to find who made a change: forms are open for minutes, not weeks.
LOOK_BACK = 50


class StaleForm(Conflict):
    """The form was based on values that changed since it was opened. Nothing was written."""

    def __init__(self, message: str, *, code: str = "changed_since_opened", field: str | None = None):
        super().__init__(message, code=code, field=field)


def last_change(entries: QuerySet, changed: Callable[[AuditEntry], bool]) -> AuditEntry | None:
    """The newest of these audit entries that `changed` recognises, or None."""
    for entry in entries.order_by("-created_at", "-id")[:LOOK_BACK]:
        if changed(entry):
            return entry
    return None


def by_whom(entry: AuditEntry | None) -> str:
    """' (by olivia_ops, 2 min ago)', or nothing when the trail doesn't say."""
    if entry is None:
        return ""

    return f" (by {entry.actor_label}, {format_ago(entry.created_at)})"


def quoted(value) -> str:
    if value is MISSING or value in ("", None):
        return "empty"
    text = value if isinstance(value, str) else _json(value)
    return f"“{text[:80]}…”" if len(text) > 80 else f"“{text}”"


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
