"""A service's rules and refusals on a dashboard form: its checks as field validation, and its
errors shown next to the field they name."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from billing.quantities import parse_quantity
from billing.services import require_reason
from customers.errors import ServiceError


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


class ServiceErrorsMixin:
    """Show a service's refusal next to the field it names, or above the form."""

    service_fields: dict[str, str] = {}

    def add_service_error(self, error: ServiceError) -> None:
        field = self.service_fields.get(error.field or "", error.field)
        self.add_error(field if field in self.fields else None, error.message)
