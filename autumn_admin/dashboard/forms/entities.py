"""Create entity and Delete entity: an entity's id, name and feature; the reason for a deletion."""

from __future__ import annotations

from django import forms

from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin, required_reason
from billing.selectors import entity_features
from billing.services.entities import NAME_MAX_LENGTH
from customers.models import CUSTOMER_ID_MAX_LENGTH
from customers.validation import REASON_MAX_LENGTH


class EntityCreateForm(ServiceErrorsMixin, forms.Form):
    entity_id = forms.CharField(label="ID", max_length=CUSTOMER_ID_MAX_LENGTH)
    name = forms.CharField(max_length=NAME_MAX_LENGTH, required=False)
    feature = forms.ModelChoiceField(
        queryset=entity_features(),
        empty_label=None,
        error_messages={"required": "Choose a feature.", "invalid_choice": "That feature can't count entities."},
    )
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    service_fields = {"entity_id": "entity_id", "feature_id": "feature", "name": "name", "reason": "reason"}


class EntityDeleteForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_reason(self) -> str:
        return required_reason(self.cleaned_data.get("reason"))
