"""The API keys page's form: a named key for the environment the page shows."""

from __future__ import annotations

from django import forms

from customers.models import Env
from customers.services.api_keys import API_KEY_NAME_MAX_LENGTH


class ApiKeyForm(forms.Form):
    """A key for the environment the page shows: the page lists that environment's keys only."""

    name = forms.CharField(max_length=API_KEY_NAME_MAX_LENGTH, help_text="What uses it, e.g. “Production backend”.")
    env = forms.ChoiceField(label="Environment", choices=Env.choices, widget=forms.HiddenInput)

    def __init__(self, *args, env: str, **kwargs):
        super().__init__(*args, initial={"env": env}, **kwargs)
        self.page_env = env

    def clean_env(self):
        env = self.cleaned_data["env"]
        if env != self.page_env:
            # Posted from a page of the other environment (switched meanwhile, in another tab).
            raise forms.ValidationError(
                f"This page now shows {Env(self.page_env).label} keys, so no {Env(env).label} key was created. "
                f"Switch to {Env(env).label} to create one there."
            )
        return env
