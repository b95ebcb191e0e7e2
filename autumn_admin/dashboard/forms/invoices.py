"""The invoice popups' forms: void, refund and credit note. Each carries what the person saw (the status, the
amount already refunded) so the service can refuse an invoice that changed since."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms

from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin, required_reason
from billing.models import CreditNoteReason, Invoice
from billing.money import decimals_of

REFUND_REASONS = [
    ("requested_by_customer", "Requested by customer"),
    ("duplicate", "Duplicate"),
    ("fraudulent", "Fraudulent"),
]
DESTINATIONS = [
    ("customer_balance", "Credit the customer's balance"),
    ("refund", "Refund to the payment method"),
    ("out_of_band", "Returned outside Stripe"),
]


def minor_units(raw, invoice: Invoice) -> int:
    """An amount in major units ("25.50") as the invoice currency's minor units; ValidationError otherwise."""
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise forms.ValidationError("Enter an amount, like 25.00.") from None
    places = decimals_of(invoice.currency)
    minor = value * (10**places)
    if not value.is_finite() or minor != minor.to_integral_value():
        raise forms.ValidationError(f"Enter an amount with at most {places} decimals.")
    if minor <= 0:
        raise forms.ValidationError("Enter an amount above zero.")
    return int(minor)


def major(minor: int, invoice: Invoice) -> str:
    """Minor units as the amount a person types ("25.50")."""
    places = decimals_of(invoice.currency)
    return f"{Decimal(minor) / (10**places):.{places}f}"


class InvoiceActionForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.TextInput)
    expected_status = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, data=None, *, invoice: Invoice):
        super().__init__(data, initial={"expected_status": invoice.status})
        self.invoice = invoice

    def clean_reason(self) -> str:
        return required_reason(self.cleaned_data.get("reason"))


class InvoiceVoidForm(InvoiceActionForm):
    pass


class InvoiceRefundForm(InvoiceActionForm):
    amount = forms.CharField(max_length=32)
    stripe_reason = forms.ChoiceField(choices=REFUND_REASONS, initial="requested_by_customer")
    expected_refunded = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def __init__(self, data=None, *, invoice: Invoice):
        super().__init__(data, invoice=invoice)
        self.initial |= {
            "expected_refunded": invoice.amount_refunded,
            "amount": major(invoice.refundable, invoice),
        }

    def clean_amount(self) -> int:
        return minor_units(self.cleaned_data["amount"], self.invoice)


class InvoiceCreditForm(InvoiceActionForm):
    amount = forms.CharField(max_length=32)
    credit_reason = forms.ChoiceField(choices=[("", "—"), *CreditNoteReason.choices], required=False)
    memo = forms.CharField(max_length=500, required=False)
    destination = forms.ChoiceField(choices=DESTINATIONS, initial="customer_balance")

    def clean_amount(self) -> int:
        return minor_units(self.cleaned_data["amount"], self.invoice)
