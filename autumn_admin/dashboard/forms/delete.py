"""The delete popup's form: the customer id typed to confirm, a reason, and whether to delete in Stripe too."""

from __future__ import annotations

from django import forms

from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin
from customers.models import Customer
from customers.validation import REASON_MAX_LENGTH


class CustomerDeleteForm(ServiceErrorsMixin, forms.Form):
    confirm_id = forms.CharField(
        label="Type the customer id to confirm",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional. Kept in the audit trail.",
    )
    also_delete_in_stripe = forms.BooleanField(label="Also delete in Stripe", required=False)

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer

    def clean_confirm_id(self) -> str:
        typed = (self.cleaned_data.get("confirm_id") or "").strip()
        if typed != self.customer.customer_id:
            raise forms.ValidationError(f"Type {self.customer.customer_id} exactly to confirm.")
        return typed
