"""The support tools' forms: Record Usage and Check Balance (a balance row's menu), and Create Customer (the
customers list)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from autumn_admin.dashboard.forms.details import MetadataForm
from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin, quantity, required_reason, shown_json
from customers.errors import ServiceError
from customers.models import Customer
from customers.validation import REASON_MAX_LENGTH


class UsageRecordForm(ServiceErrorsMixin, forms.Form):
    """Record Usage: a value tracked as balances.track would, with optional event properties and a reason."""

    value = forms.CharField(
        label="Value", initial="1", widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
    )
    properties = forms.CharField(
        label="Properties",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"key": "value"}', "spellcheck": "false"}),
        help_text="Optional. A JSON object, kept on the event.",
    )
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_value(self) -> Decimal:
        return quantity(self.cleaned_data.get("value"), "The value")

    def clean_properties(self) -> dict | None:
        raw = (self.cleaned_data.get("properties") or "").strip()
        if not raw:
            return None
        try:
            properties = shown_json(raw)
        except ValueError:
            raise forms.ValidationError('Properties must be JSON: a JSON object such as {"plan": "pro"}.')
        if not isinstance(properties, dict):
            raise forms.ValidationError("Properties must be a JSON object (in braces), not a list or a single value.")
        return properties

    def clean_reason(self) -> str:
        return required_reason(self.cleaned_data.get("reason"))


class BalanceCheckForm(ServiceErrorsMixin, forms.Form):
    """Check Balance: balances.check's required_balance (default 1)."""

    required_balance = forms.CharField(
        label="Required balance",
        initial="1",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )

    def clean_required_balance(self) -> Decimal:
        return quantity(self.cleaned_data.get("required_balance"), "The required balance", allow_negative=False)


class CustomerCreateForm(MetadataForm):
    """Create Customer: id, name, email, optional fingerprint, and metadata as key/value rows (MetadataForm's
    rows, starting empty)."""

    id = forms.CharField(label="ID", required=False, widget=forms.TextInput(attrs={"placeholder": "cus_123"}))
    name = forms.CharField(label="Name", required=False, widget=forms.TextInput(attrs={"placeholder": "John Doe"}))
    email = forms.CharField(
        label="Email", required=False, widget=forms.EmailInput(attrs={"placeholder": "jane@example.com"})
    )
    fingerprint = forms.CharField(label="Fingerprint", required=False)

    service_fields = {"id": "id", "customer_id": "id", "name": "name", "email": "email", "fingerprint": "fingerprint"}

    def __init__(self, data=None, **kwargs):
        super().__init__(data, customer=Customer(), **kwargs)  # a new customer's metadata: none yet
        self.out_of_date = False  # nothing was shown that could have changed since

    def clean_id(self) -> str:
        value = self.cleaned_data["id"].strip()
        if not value:
            raise forms.ValidationError("A customer id is required.")
        return value

    def fields_to_create(self) -> dict:
        data = self.cleaned_data
        fields = {k: data[k].strip() for k in ("name", "email", "fingerprint") if data[k].strip()}
        if data["metadata"]:
            fields["metadata"] = data["metadata"]
        return fields

    def add_service_error(self, error: ServiceError) -> None:
        field = self.service_fields.get(error.field or "")
        self.add_error(field, error.message)
