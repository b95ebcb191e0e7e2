"""How the dashboard's forms validate: a service's checks as field validation, its refusals shown next
to the field they name, and the answer to a form that no longer carries what it showed."""

from __future__ import annotations

import json
from decimal import Decimal

from django import forms

from billing.quantities import parse_quantity
from customers.errors import ServiceError
from customers.validation import METADATA_MAX_DEPTH, require_reason

# What a form carries of what it showed (metadata, a product's figures) is never nested deeper than
# metadata may be, within the object that holds it.
SHOWN_MAX_DEPTH = METADATA_MAX_DEPTH + 1


def quantity(raw, label: str, *, allow_negative: bool = True) -> Decimal:
    try:
        return parse_quantity(raw, field=label, allow_negative=allow_negative)
    except ServiceError as e:
        raise forms.ValidationError(e.message)


def required_reason(raw) -> str:
    try:
        return require_reason(raw)
    except ServiceError as e:
        raise forms.ValidationError(e.message)


def out_of_date(what: str) -> forms.ValidationError:
    """For a form posted without the values it showed (or with values no page of ours carries)."""
    return forms.ValidationError(f"This form is out of date: reopen it to see the current {what}.")


def shown_json(raw):
    """Parse a form's hidden record of what it showed (JSON). ValueError for what no page of ours wrote: not
    JSON, or nested deeper than anything shown (Python's parser recurses into each level, so thousands of
    them would end in a RecursionError, a 500)."""
    text = raw if isinstance(raw, str) else ""
    if _nesting(text) > SHOWN_MAX_DEPTH:
        raise ValueError("nested too deeply")
    return json.loads(text)


def _nesting(text: str) -> int:
    """How deeply the JSON text's arrays and objects lie within one another (brackets in strings aside)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class ServiceErrorsMixin:
    """Show a service's refusal next to the field it names, or above the form."""

    service_fields: dict[str, str] = {}

    def add_service_error(self, error: ServiceError) -> None:
        field = self.service_fields.get(error.field or "", error.field)
        self.add_error(field if field in self.fields else None, error.message)
