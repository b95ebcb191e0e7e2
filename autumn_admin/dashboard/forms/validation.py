"""How the dashboard's forms validate: a service's checks as field validation, its refusals shown next
to the field they name, and the answer to a form that no longer carries what it showed."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from billing.quantities import parse_quantity
from customers.errors import ServiceError
from customers.validation import require_reason


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


class ServiceErrorsMixin:
    """Show a service's refusal next to the field it names, or above the form."""

    service_fields: dict[str, str] = {}

    def add_service_error(self, error: ServiceError) -> None:
        field = self.service_fields.get(error.field or "", error.field)
        self.add_error(field if field in self.fields else None, error.message)
