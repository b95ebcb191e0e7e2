"""Customize's form: new allowances for a customer's product, and one feature it lacks, over the
figures it showed."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django import forms

from autumn_admin.dashboard.forms.validation import (
    ServiceErrorsMixin,
    out_of_date,
    quantity,
    required_reason,
    shown_json,
)
from billing.models import Feature, FeatureType, Interval, UsageType
from customers.validation import REASON_MAX_LENGTH


class ProductCustomizeForm(ServiceErrorsMixin, forms.Form):
    """One allowance field per metered item of the product, plus one feature the product lacks."""

    add_feature = forms.ModelChoiceField(
        queryset=Feature.objects.none(), required=False, label="Add a feature", empty_label="—"
    )
    add_included = forms.CharField(
        label="Included", required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    add_interval = forms.ChoiceField(label="Resets", choices=Interval.choices, initial=Interval.MONTH, required=False)
    add_overage_allowed = forms.BooleanField(label="Overage allowed", required=False)
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required. Shown in the customer's activity.",
    )
    # What the form showed: the product's allowances and the balances' grants (JSON, see `expectation`).
    expected = forms.CharField(required=False, widget=forms.HiddenInput)

    service_fields = {"reason": "reason", "feature": "add_feature", "interval": "add_interval"}

    def __init__(self, *args, product_items, balances=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.product_items = list(product_items)
        self.balances = list(balances)
        self.fields["expected"].initial = self.expectation(self.product_items, self.balances)
        have = {item.feature_id for item in self.product_items}
        self.fields["add_feature"].queryset = Feature.objects.filter(archived=False).exclude(pk__in=have)
        self.item_fields = []
        for item in self.product_items:
            if item.feature.type == FeatureType.BOOLEAN:
                continue
            name = f"included_{item.feature.feature_id}"
            self.fields[name] = forms.CharField(
                label=item.feature.name,
                required=False,
                initial="" if item.unlimited else _plain(item.included),
                widget=forms.TextInput(
                    attrs={"inputmode": "decimal", "placeholder": "unlimited" if item.unlimited else ""}
                ),
            )
            self.item_fields.append((item, name))

    @staticmethod
    def expectation(items, balances) -> str:
        """The allowances and grants shown, as the hidden field carries them."""

        def shown(unlimited: bool, value: Decimal) -> str:
            return "unlimited" if unlimited else _plain(value)

        return json.dumps(
            {
                "items": {item.feature.feature_id: shown(item.unlimited, item.included) for item in items},
                "balances": {str(b.pk): shown(b.unlimited, b.granted) for b in balances},
            },
            sort_keys=True,
        )

    def clean_expected(self) -> dict:
        """{"items": {feature_id: Decimal | "unlimited"}, "balances": {balance pk: Decimal | "unlimited"}}."""
        try:
            raw = shown_json(self.cleaned_data["expected"])
            return {
                part: {
                    (int(k) if part == "balances" else k): (v if v == "unlimited" else _finite(v))
                    for k, v in raw[part].items()
                }
                for part in ("items", "balances")
            }
        except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation):
            raise out_of_date("allowances")

    def based_on(self, items, balances) -> None:
        """After a conflict: the form stands on the current figures, so submitting again applies it to them."""
        self.data = self.data.copy()
        self.data["expected"] = self.expectation(items, balances)

    def clean_reason(self) -> str:
        return required_reason(self.cleaned_data.get("reason"))

    def clean(self):
        cleaned = super().clean()
        changes = self._allowance_changes()
        feature = cleaned.get("add_feature")
        if feature is not None:
            changes.append(self._added_feature(feature, cleaned))
        elif (cleaned.get("add_included") or "").strip():
            self.add_error("add_feature", "Choose the feature to add.")
        cleaned["changes"] = changes
        return cleaned

    def _allowance_changes(self) -> list[dict]:
        """The product's items whose allowance the form changes: {"feature", "included"} each."""
        changes = []
        for item, name in self.item_fields:
            raw = (self.data.get(name) or "").strip()
            if item.unlimited and not raw:
                continue
            try:
                included = quantity(raw, f"{item.feature.name}'s allowance", allow_negative=False)
            except forms.ValidationError as e:
                self.add_error(name, e)
                continue
            if item.unlimited or included != item.included:
                changes.append({"feature": item.feature, "included": included})
        return changes

    def _added_feature(self, feature: Feature, cleaned: dict) -> dict:
        """The feature the product lacks, as a change: its allowance, how it resets, its overage."""
        change = {
            "feature": feature,
            "interval": cleaned.get("add_interval") or Interval.MONTH,
            "overage_allowed": cleaned.get("add_overage_allowed", False),
            "included": Decimal(0),
        }
        if feature.type == FeatureType.BOOLEAN or feature.usage_type == UsageType.CONTINUOUS_USE:
            change["interval"] = Interval.LIFETIME  # access and seats don't reset
        if feature.type != FeatureType.BOOLEAN:
            try:
                change["included"] = quantity(
                    cleaned.get("add_included"), "The included allowance", allow_negative=False
                )
            except forms.ValidationError as e:
                self.add_error("add_included", e)
        return change


def _finite(raw: str) -> Decimal:
    value = Decimal(raw)
    if not value.is_finite():
        raise InvalidOperation
    return value


def _plain(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
