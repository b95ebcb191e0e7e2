"""The balance popup's form: set a new balance or add to it, with a reason, over the balance it showed."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms

from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin, out_of_date, quantity, required_reason
from customers.validation import REASON_MAX_LENGTH


class BalanceEditForm(ServiceErrorsMixin, forms.Form):
    SET, ADD = "set", "add"

    mode = forms.ChoiceField(
        choices=[(SET, "Set new balance"), (ADD, "Add to balance")],
        initial=SET,
        widget=forms.RadioSelect,
    )
    value = forms.CharField(
        label="New balance",
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "autofocus": True}),
    )
    next_reset_at = forms.DateTimeField(
        label="Next reset",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional. Leave empty to keep the current reset date.",
    )
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required. Shown in the customer's activity.",
    )
    expected_remaining = forms.CharField(widget=forms.HiddenInput)

    service_fields = {"new_balance": "value", "amount": "value", "next_reset_at": "next_reset_at", "reason": "reason"}

    def clean_value(self) -> Decimal:
        label = "The amount to add" if self.data.get("mode") == self.ADD else "The new balance"
        return quantity(self.cleaned_data.get("value"), label)

    def clean_reason(self) -> str:
        return required_reason(self.cleaned_data.get("reason"))

    def clean_expected_remaining(self) -> Decimal:
        try:
            value = Decimal(self.cleaned_data["expected_remaining"])
        except (InvalidOperation, ValueError):
            value = None
        # A balance is always a finite number; NaN (a signalling one raises when compared) never came from us.
        if value is None or not value.is_finite():
            raise out_of_date("balance")
        return value
