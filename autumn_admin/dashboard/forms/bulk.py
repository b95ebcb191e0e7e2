"""The bulk action's form: which customers (the list's selection), the action and its inputs, and a reason."""

from __future__ import annotations

from django import forms

from autumn_admin.dashboard.selection import Selection
from billing.services import bulk
from billing.services.bulk_actions import INPUTS, REGISTRY, BulkAction
from customers.errors import ServiceError
from customers.validation import REASON_MAX_LENGTH, require_reason

EXPORT = "export"
# The action's inputs are named act_* in the form: its other fields are the list's filters (feature, product…).


class BulkActionForm(forms.Form):
    """`selection` is the customers the form is for; valid, `cleaned_data["got"]` is the action's inputs
    (`bulk.bulk_input`) and `cleaned_data["reason"]` the reason. A NUL character anywhere, which the
    database can't compare or store, is a message on the form like any other bad value."""

    action = forms.CharField(required=False)
    act_feature = forms.CharField(required=False)
    act_amount = forms.CharField(required=False)
    act_interval = forms.CharField(required=False)
    act_expires_at = forms.CharField(required=False)
    act_reward = forms.CharField(required=False)
    act_product = forms.CharField(required=False)
    act_grant_free = forms.CharField(required=False)
    reason = forms.CharField(required=False, max_length=REASON_MAX_LENGTH)

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.selection = Selection.from_data(self.data)
        self.nul_in = sorted({name for name in self.data if "\x00" in name or _has_nul(self.data.getlist(name))})

    @property
    def values(self) -> dict:
        """What the form shows in its inputs: action, reason and the act_* inputs by their short name."""
        return {name: self.data.get(f"act_{name}", "") for name in INPUTS} | {
            "action": self.data.get("action", ""),
            "reason": self.data.get("reason", ""),
        }

    @property
    def chosen_action(self) -> BulkAction | None:
        """The registered action the form is for (its fields are the only ones shown), or None: pick one first."""
        return REGISTRY.get(self.data.get("action", ""))

    @property
    def nul_problem(self) -> str:
        if not self.nul_in:
            return ""
        names = ", ".join(repr(n.replace("\x00", "\\0")[:40]) for n in self.nul_in)
        return f"A field can't contain a NUL character ({names}): nothing was previewed or run."

    @property
    def selection_problem(self) -> str:
        """Why no customers can be chosen by this form (a bad filter, or none ticked), or ""."""
        if self.selection.filters.errors:
            return "; ".join(self.selection.filters.errors)
        if self.selection.empty:
            return "Select customers on the list first (tick rows, or all matching)."
        return ""

    def clean(self):
        cleaned = super().clean()
        if self.nul_problem:
            raise forms.ValidationError(self.nul_problem)
        if self.selection_problem:
            raise forms.ValidationError(self.selection_problem)
        if self.errors:
            return cleaned
        values = {name: cleaned.get(f"act_{name}", "") for name in INPUTS}
        try:
            cleaned["got"] = bulk.bulk_input(cleaned.get("action", ""), values)
            cleaned["reason"] = require_reason(cleaned.get("reason"))
        except ServiceError as e:
            field = e.field if e.field in ("action", "reason") else f"act_{e.field}"
            self.add_error(field if field in self.fields else None, e.message)
        return cleaned

    def errors_by_input(self) -> dict:
        """Errors keyed as the template shows them: action, reason, the act_* inputs by short name, "all"."""
        shown = {}
        for field, errors in self.errors.items():
            key = "all" if field == "__all__" else field.removeprefix("act_")
            shown[key] = " ".join(errors)
        if self.nul_problem:
            shown["all"] = self.nul_problem
        return shown


def _has_nul(values: list) -> bool:
    return any("\x00" in str(v) for v in values)
