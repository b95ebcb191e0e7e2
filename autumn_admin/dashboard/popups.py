"""Popups: one template serves the htmx <dialog> fragment and, without JavaScript, a full page.

A popup template extends templates/includes/popup_base.html and fills its blocks: htmx requests get
just the dialog (opened as a modal by static/js/app.js); other requests get the whole page with the
dialog shown in place. A form the popup refuses answers 422, or 409 when it was overtaken.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

FORM_INVALID = 422
CONFLICT = 409


def render_popup(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    """The popup for htmx or as a page: its template chooses by `request.htmx`."""
    return render(request, template, context, status=status)
