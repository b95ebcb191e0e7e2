"""The plan popups' forms: Attach Product (a product, when, how it is paid, a reason) and Cancel (when, a
reason)."""

from __future__ import annotations

from django import forms

from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin
from billing.models import Product
from billing.services.plans import CHECKOUT, END_OF_CYCLE, GRANT_FREE, NO_CHARGE, NOW, UPDATE_SUBSCRIPTION
from customers.validation import REASON_MAX_LENGTH

WHEN_CHOICES = [(NOW, "Now"), (END_OF_CYCLE, "At the end of the billing period")]
METHOD_CHOICES = [
    (CHECKOUT, "Send a checkout link"),
    (UPDATE_SUBSCRIPTION, "Update the Stripe subscription"),
    (GRANT_FREE, "Grant for free"),
    (NO_CHARGE, "Free plan: no charge"),
]
CANCEL_CHOICES = [(NOW, "Immediately"), (END_OF_CYCLE, "At the end of the billing cycle")]


def _reason_field() -> forms.CharField:
    return forms.CharField(max_length=REASON_MAX_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PlanAttachForm(ServiceErrorsMixin, forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.none(), empty_label="Choose a product…")
    when = forms.ChoiceField(choices=WHEN_CHOICES, required=False)
    method = forms.ChoiceField(choices=METHOD_CHOICES, required=False)
    reason = _reason_field()

    service_fields = {"when": "when", "method": "method", "reason": "reason", "product_id": "product"}

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = (
            Product.objects.newest()  # an older version stays with the customers on it, it is not offered
            .filter(archived=False)
            .order_by("name", "-version")
            .prefetch_related("prices")
        )
        self.fields["product"].label_from_instance = _product_label


def _product_label(product: Product) -> str:
    kind = "add-on" if product.is_add_on else "plan"
    return f"{product} · {kind}"


class PlanCancelForm(ServiceErrorsMixin, forms.Form):
    when = forms.ChoiceField(choices=CANCEL_CHOICES, widget=forms.RadioSelect)
    reason = _reason_field()

    service_fields = {"when": "when", "reason": "reason"}


class PlanUncancelForm(ServiceErrorsMixin, forms.Form):
    reason = _reason_field()
