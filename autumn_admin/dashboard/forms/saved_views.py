"""Saving the customers list's filters as a named view."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.http import QueryDict

from autumn_admin.dashboard import customer_list as listing


class SavedViewForm(forms.Form):
    """A name and the list's query string. The query is read by the list's own filter parsing: a view stores
    only filters the list accepts, written the way the list writes them (unknown parameters and the page
    dropped), so opening it never shows "These filters can't be used"."""

    name = forms.CharField(required=False, strip=False)  # the service says what a name may be
    query = forms.CharField(required=False, strip=False)
    # Only "1" shares (the checkbox's value, and what the view checks the permission for): a BooleanField
    # would read "0" as true.
    shared = forms.TypedChoiceField(
        choices=[("1", "yes")],
        coerce=lambda v: v == "1",
        required=False,
        empty_value=False,
        error_messages={"invalid_choice": "“Share with the team” is ticked (1) or left out, not %(value)r."},
    )

    def clean_query(self) -> str:
        raw = self.cleaned_data["query"]
        if "\x00" in raw:
            raise forms.ValidationError("These filters can't be saved: filters can't contain a NUL character.")
        filters = listing.ListFilters.from_query(QueryDict(raw))
        if filters.errors:
            raise forms.ValidationError("These filters can't be saved: " + " ".join(filters.errors))
        return urlencode(filters.query())
