"""Popups: one template serves the htmx <dialog> fragment and, without JavaScript, a full page.

A popup template extends base.html and defines `{% partialdef dialog inline %}` in its content
block: htmx requests get just the dialog (opened as a modal by static/js/app.js); other requests
get the whole page with the dialog shown in place.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

FORM_INVALID = 422
CONFLICT = 409


def render_popup(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    name = f"{template}#dialog" if request.htmx else template
    return render(request, name, context, status=status)
