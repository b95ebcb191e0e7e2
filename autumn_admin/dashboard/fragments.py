"""The parts of the customer page that an action changed, rendered for htmx to swap in place, and
the answer of an action that succeeded."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.html import format_html

from autumn_admin.dashboard.customer_page import customer_page_context
from customers.models import Customer

PAGE = "customers/detail.html"

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


def page_sections(
    request: HttpRequest,
    customer: Customer,
    names: Iterable[str],
    *,
    feature_ids: Iterable[int] = (),
    message: str = "",
    context: dict | None = None,
) -> str:
    """Out-of-band swaps of the named page partials (and the balance rows of these features),
    plus a status message. The response's main content is empty, which closes the popup."""
    context = context if context is not None else customer_page_context(customer, request=request)
    parts = [render_oob(f"{PAGE}#{name}", context, request) for name in names]
    wanted = set(feature_ids)
    for fb in context["feature_rows"]:
        if fb.feature.pk in wanted:
            parts.append(render_oob(f"{PAGE}#balance-row", {**context, "fb": fb}, request))
    if message:
        parts.append(
            format_html('<div hx-swap-oob="beforeend:body"><p class="toast" role="status">{}</p></div>', message)
        )
    return "\n".join(parts)


def action_done(request, customer, message: str, sections: Iterable[str], *, feature_ids=()) -> HttpResponse:
    """After a change: htmx gets the refreshed sections (the popup, its target, is emptied and so
    closes); a plain post is redirected back to the customer page with the message."""
    if request.htmx:
        return HttpResponse(page_sections(request, customer, sections, feature_ids=feature_ids, message=message))
    messages.success(request, message)
    return redirect("customers:detail", customer.customer_id)
