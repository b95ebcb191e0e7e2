"""The API's units on the wire, as requests send them: times are milliseconds since the Unix epoch (answers
write them with billing.shapes.units, which also turns money into major units)."""

from __future__ import annotations

from datetime import UTC, datetime

MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)
