"""The API keys page's form: a named key for the environment the page shows."""

from __future__ import annotations

from django import forms

from customers.services.api_keys import API_KEY_NAME_MAX_LENGTH


class ApiKeyForm(forms.Form):
    """A key for the environment the page shows: the page lists that environment's keys only. A form shown
    for the other environment (switched meanwhile, in another tab) never gets here: see `PageEnvMiddleware`."""

    name = forms.CharField(max_length=API_KEY_NAME_MAX_LENGTH, help_text="What uses it, e.g. “Production backend”.")
