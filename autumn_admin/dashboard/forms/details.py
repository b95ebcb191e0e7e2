"""The inline forms of a customer's Details: the id; name, email and fingerprint together; or the metadata
as key/value rows. Each carries the values it showed."""

from __future__ import annotations

import json

from django import forms

from autumn_admin.dashboard.forms.validation import out_of_date, shown_json
from customers.errors import ServiceError
from customers.models import DETAIL_FIELDS, TEXT_FIELDS, Customer


def _stored(customer: Customer, field: str):
    return customer.customer_id if field == "id" else getattr(customer, field)


class ContactForm(forms.Form):
    """Name, email and fingerprint, edited together (clicking any of them opens all three, the clicked one
    focused). Only what was changed here is saved, each checked against the value the form showed: a field
    someone else changed meanwhile, and not here, is left as they made it."""

    fields_edited = TEXT_FIELDS
    name = forms.CharField(required=False, label="Name")
    email = forms.CharField(required=False, label="Email", widget=forms.EmailInput)
    fingerprint = forms.CharField(required=False, label="Fingerprint")
    expected_name = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    expected_email = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    expected_fingerprint = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)

    def __init__(self, *args, field: str, customer: Customer, **kwargs):
        self.field = field  # the one clicked: focused first
        shown = {f: getattr(customer, f) or "" for f in TEXT_FIELDS}
        kwargs.setdefault("initial", {**shown, **{f"expected_{f}": v for f, v in shown.items()}})
        super().__init__(*args, **kwargs)
        for f in TEXT_FIELDS:
            self.fields[f].widget.attrs.update({"autocomplete": "off"})
        self.fields[field].widget.attrs["autofocus"] = True

    def clean(self):
        cleaned = super().clean()
        if any(f"expected_{f}" not in self.data for f in TEXT_FIELDS):
            raise out_of_date("details")
        return cleaned

    def changed(self) -> dict[str, str]:
        """field → new value, for the fields this form changed from what it showed."""
        return {
            f: self.cleaned_data[f].strip()
            for f in TEXT_FIELDS
            if self.cleaned_data[f].strip() != self.cleaned_data[f"expected_{f}"]
        }

    def service_kwargs(self) -> dict:
        changed = self.changed()
        return {**changed, "expected": {f: self.cleaned_data[f"expected_{f}"] for f in changed}}

    def add_service_error(self, error: ServiceError) -> None:
        self.add_error(error.field if error.field in TEXT_FIELDS else None, error.message)

    def based_on(self, customer: Customer) -> None:
        """After a conflict: the form now stands on the current values, so saving again replaces them."""
        self.data = self.data.copy()
        for f in TEXT_FIELDS:
            self.data[f"expected_{f}"] = getattr(customer, f) or ""


class DetailFieldForm(forms.Form):
    """The id: a single text input."""

    value = forms.CharField(required=False)  # the service refuses what is too long, as for the API
    # The value the form showed: saving over a value changed since is refused (empty is a value too).
    expected = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)

    def __init__(self, *args, field: str, customer: Customer, **kwargs):
        self.field = field
        initial = _stored(customer, field)
        kwargs.setdefault("initial", {"value": initial, "expected": initial})
        super().__init__(*args, **kwargs)
        self.fields["value"].label = DETAIL_FIELDS[field]
        self.fields["value"].widget.attrs.update({"autofocus": True, "autocomplete": "off"})
        if field == "email":
            self.fields["value"].widget.input_type = "email"
        if field == "id":
            self.fields["value"].required = True
            self.fields["value"].error_messages["required"] = "A customer id is required."

    def clean_expected(self) -> str:
        if "expected" not in self.data:
            raise out_of_date("value")
        return self.cleaned_data["expected"]

    def service_kwargs(self) -> dict:
        value = self.cleaned_data["value"].strip()
        expected = {self.field: self.cleaned_data["expected"]}
        return {"new_customer_id" if self.field == "id" else self.field: value, "expected": expected}

    def add_service_error(self, error: ServiceError) -> None:
        self.add_error("value", error.message)

    def based_on(self, customer: Customer) -> None:
        """After a conflict: the form now stands on the current value, so saving again replaces it."""
        self.data = self.data.copy()
        self.data["expected"] = _stored(customer, self.field)


class MetadataForm(forms.Form):
    """Metadata as key/value rows. Values are text; a value that was a number, list or object in the
    API stays as it was while its text is left unchanged.

    The form carries the metadata it showed (`expected`, JSON) and saves only what was changed in
    it, key by key: keys added or changed since by someone else are left as they are now, and a
    key changed both here and there is a conflict."""

    field = "metadata"
    blank_rows = 2

    def __init__(self, data=None, *, customer: Customer, **kwargs):
        super().__init__(data, **kwargs)
        self.original = dict(customer.metadata or {})
        self.out_of_date = False
        if data is not None:
            try:
                shown = shown_json(data.get("expected", ""))
            except ValueError:
                shown = None
            self.out_of_date = not isinstance(shown, dict)
            self.original = shown if isinstance(shown, dict) else {}
            self.rows = list(zip(data.getlist("key"), data.getlist("value"), strict=False))
        else:
            self.rows = [(k, _as_text(v)) for k, v in self.original.items()]
            self.rows += [("", "")] * self.blank_rows
        self.row_errors: list[str] = []

    @property
    def expected_json(self) -> str:
        return json.dumps(self.original, ensure_ascii=False)

    def clean(self):
        if self.out_of_date:
            raise out_of_date("value")
        metadata: dict = {}
        for raw_key, raw_value in self.rows:
            key, value = raw_key.strip(), raw_value.strip()
            if not key and not value:
                continue
            if not key:
                self.row_errors.append(f"Give the value {value[:40]!r} a key.")
                continue
            if "\x00" in key or "\x00" in value:  # the database can't store it
                self.row_errors.append(f"The key {key[:40]!r} or its value contains a NUL character.")
                continue
            if key in metadata:
                self.row_errors.append(f"The key {key!r} appears twice.")
                continue
            original = self.original.get(key)
            metadata[key] = original if key in self.original and _as_text(original) == value else value
        for message in self.row_errors:
            self.add_error(None, message)
        self.cleaned_data["metadata"] = metadata
        return self.cleaned_data

    def changes(self) -> dict:
        """What this form changed of what it showed: key → new value, or None for a removed key."""
        wanted, shown = self.cleaned_data["metadata"], self.original
        return {
            key: wanted.get(key)
            for key in [*shown, *wanted]
            if key not in wanted or key not in shown or wanted[key] != shown[key]
        }

    def service_kwargs(self) -> dict:
        return {"metadata_merge": self.changes(), "expected": {"metadata": self.original}}

    def add_service_error(self, error: ServiceError) -> None:
        self.add_error(None, error.message)

    def based_on(self, customer: Customer) -> None:
        """After a conflict: the rows are the current metadata with this form's changes on top, and
        the form now stands on the current metadata, so saving again applies the changes to it."""
        current = dict(customer.metadata or {})
        merged = dict(current)
        for key, value in self.changes().items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        self.original = current
        self.rows = [(k, _as_text(v)) for k, v in merged.items()] + [("", "")] * self.blank_rows


def _as_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
