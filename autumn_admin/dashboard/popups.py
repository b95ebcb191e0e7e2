"""Popups: one template serves the htmx <dialog> fragment and, without JavaScript, a full page.

A popup template extends base.html and defines `{% partialdef dialog inline %}` in its content
block: htmx requests get just the dialog (opened as a modal by static/js/app.js); other requests
get the whole page with the dialog shown in place.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

FORM_INVALID = 422
CONFLICT = 409


def render_popup(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    name = f"{template}#dialog" if request.htmx else template
    return render(request, name, context, status=status)


_FIRST_TAG = re.compile(r"^(\s*<[a-zA-Z][a-zA-Z0-9-]*)")
_TABLE_PARTS = ("<tr", "<tbody", "<thead", "<td", "<th")


def render_oob(template: str, context: dict, request: HttpRequest) -> str:
    """Render a page partial for an out-of-band swap: htmx replaces the element of the same id."""
    html = render_to_string(template, context, request=request).strip()
    html = _FIRST_TAG.sub(r'\1 hx-swap-oob="true"', html, count=1)
    if html.startswith(_TABLE_PARTS):
        # Table rows can't stand alone in a response; htmx takes them out of a <template>.
        html = f"<template>{html}</template>"
    return html
