"""The balance popup's form (set a new balance or add to it, with a reason, over the balance it showed), and the
forms of Create Balance and of deleting a grant."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.conf import settings

from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin, out_of_date, quantity, required_reason
from billing.models import Feature, FeatureType, Interval
from customers.validation import REASON_MAX_LENGTH

# The one word for a balance that never resets, wherever the dashboard shows or offers one.
NEVER_RESETS = "Never resets"


def _moment_field(label: str, help_text: str) -> forms.DateTimeField:
    """An optional date and time, picked in the browser's own control."""
    return forms.DateTimeField(
        label=label,
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=f"{help_text} In {settings.TIME_ZONE}, the app's time zone.",
    )


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
    next_reset_at = _moment_field("Next reset", "Optional. Leave empty to keep the current reset date.")
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


class BalanceCreateForm(ServiceErrorsMixin, forms.Form):
    """Create Balance: a grant of a feature outside the plan, one-off or resetting, optionally expiring."""

    ONE_OFF, RESETTING = "one_off", "resetting"

    feature = forms.ModelChoiceField(queryset=Feature.objects.none(), empty_label="Choose a feature")
    amount = forms.CharField(
        label="Amount", widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
    )
    kind = forms.ChoiceField(
        choices=[(ONE_OFF, NEVER_RESETS), (RESETTING, "Resets every")], initial=ONE_OFF, widget=forms.RadioSelect
    )
    interval = forms.ChoiceField(
        choices=[(v, label) for v, label in Interval.choices if v != Interval.LIFETIME],
        initial=Interval.MONTH,
        required=False,
    )
    next_reset_at = _moment_field("First reset", "Optional. Empty: one interval from now.")
    expires_at = _moment_field(
        "Expires at", "Optional. From then on the balance is gone from the page and from checks; its usage stays."
    )
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    service_fields = {"granted": "amount", "interval_count": "interval"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["feature"].queryset = Feature.objects.filter(archived=False).exclude(type=FeatureType.BOOLEAN)

    def clean_amount(self) -> Decimal:
        return quantity(self.cleaned_data.get("amount"), "The amount", allow_negative=False)

    def clean_reason(self) -> str:
        return required_reason(self.cleaned_data.get("reason"))

    def grant(self) -> dict:
        """The keyword arguments of `balance_create` that the form holds."""
        data = self.cleaned_data
        resetting = data["kind"] == self.RESETTING
        return {
            "feature": data["feature"],
            "granted": data["amount"],
            "interval": (data["interval"] or Interval.MONTH) if resetting else Interval.LIFETIME,
            "next_reset_at": data["next_reset_at"] if resetting else None,
            "expires_at": data["expires_at"],
            "reason": data["reason"],
        }


class BalanceDeleteForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_reason(self) -> str:
        return required_reason(self.cleaned_data.get("reason"))
