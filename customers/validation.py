"""The input rules of customers and of every audited change: ids, details, metadata and reasons, and their
limits, the same for the dashboard, the API and Django admin (all of them come here)."""

from __future__ import annotations

import json
import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from customers.errors import ServiceError
from customers.models import CUSTOMER_ID_MAX_LENGTH, CUSTOMER_ID_PATTERN, TEXT_FIELDS, Customer

# The details a customer's update may change (its id has a rule and an argument of its own).
EDITABLE_FIELDS = (*TEXT_FIELDS, "metadata", "send_email_receipts")
# The limits of what a customer may hold: its text details as long as their columns.
TEXT_LIMITS = {name: Customer._meta.get_field(name).max_length for name in TEXT_FIELDS}
METADATA_MAX_CHARS = 65536  # the whole object, written as JSON
METADATA_KEY_MAX_LENGTH = 255
METADATA_MAX_DEPTH = 32  # objects and lists within one another
REASON_MAX_LENGTH = 500  # a reason kept in the audit trail
_ID_RE = re.compile(CUSTOMER_ID_PATTERN)


def validate_customer_id(value, *, field: str = "id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("A customer id is required.", code="invalid_input", field=field)
    value = value.strip()
    if len(value) > CUSTOMER_ID_MAX_LENGTH:
        raise ServiceError(
            f"A customer id may be at most {CUSTOMER_ID_MAX_LENGTH} characters.", code="invalid_input", field=field
        )
    if not _ID_RE.match(value):
        raise ServiceError(
            "A customer id may contain only letters, digits, '_' and '-'.", code="invalid_input", field=field
        )
    return value


def validate_entity_id(value, *, field: str = "entity_id") -> str:
    """An entity's id: the rule of a customer's id (it is shown and linked the same way)."""
    try:
        return validate_customer_id(value, field=field)
    except ServiceError as exc:
        raise ServiceError(exc.message.replace("customer id", "entity id"), code=exc.code, field=field) from None


def _depth(value) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def validate_metadata(value, *, field: str = "metadata") -> dict:
    """A customer's metadata as it may be stored: an object with text keys, within the limits above."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ServiceError("metadata must be an object with text keys.", code="invalid_input", field=field)
    for key in value:
        if len(key) > METADATA_KEY_MAX_LENGTH:
            raise ServiceError(
                f"metadata keys may be at most {METADATA_KEY_MAX_LENGTH} characters; {key[:40]!r}… has {len(key):,}.",
                code="invalid_input",
                field=field,
            )
    if _depth(value) > METADATA_MAX_DEPTH:
        raise ServiceError(
            f"metadata may be nested at most {METADATA_MAX_DEPTH} levels deep.", code="invalid_input", field=field
        )
    size = len(json.dumps(value, default=str))
    if size > METADATA_MAX_CHARS:
        raise ServiceError(
            f"metadata may be at most {METADATA_MAX_CHARS:,} characters as JSON; this is {size:,}.",
            code="invalid_input",
            field=field,
        )
    return value


def validate_reason(reason, *, required: bool = False) -> str:
    """A reason for the audit trail: text of at most REASON_MAX_LENGTH characters, perhaps required."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if required and not reason:
        raise ServiceError("A reason is required.", code="invalid_input", field="reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise ServiceError(
            f"A reason may be at most {REASON_MAX_LENGTH} characters; this one has {len(reason):,}.",
            code="invalid_input",
            field="reason",
        )
    return reason


def require_reason(reason) -> str:
    """Edits that change what a customer is charged need a reason, kept in the audit trail."""
    return validate_reason(reason, required=True)


def clean_customer_fields(fields: dict) -> dict:
    """A customer's details (of EDITABLE_FIELDS) as they may be stored, or ServiceError naming the field at fault."""
    clean = {}
    for key, value in fields.items():
        if key not in EDITABLE_FIELDS:
            raise ServiceError(f"{key} can't be changed.", code="invalid_input", field=key)
        if key in TEXT_LIMITS:
            value = "" if value is None else value
            if not isinstance(value, str):
                raise ServiceError(f"{key} must be text.", code="invalid_input", field=key)
            value = value.strip()
            if len(value) > TEXT_LIMITS[key]:
                raise ServiceError(
                    f"{key} may be at most {TEXT_LIMITS[key]} characters.", code="invalid_input", field=key
                )
            if key == "email" and value:
                try:
                    validate_email(value)
                except ValidationError:
                    raise ServiceError(f"{value!r} is not a valid email address.", code="invalid_input", field="email")
        elif key == "metadata":
            value = validate_metadata({} if value is None else value)
        elif key == "send_email_receipts" and not isinstance(value, bool):
            raise ServiceError("send_email_receipts must be true or false.", code="invalid_input", field=key)
        clean[key] = value
    return clean
