"""How long the API's answers to Idempotency-Keys are kept, and forgetting them (`purge_idempotency_records`)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from customers.models import IdempotencyRecord

KEEP_FOR = timedelta(hours=24)


def idempotency_records_purge(*, older_than: timedelta = KEEP_FOR) -> int:
    """Forget keys older than `older_than` (at least 24 h). Returns how many."""
    if older_than < KEEP_FOR:
        raise ValueError(f"Idempotency keys are kept at least {KEEP_FOR}.")
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
