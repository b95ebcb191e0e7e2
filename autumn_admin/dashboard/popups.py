"""Popups: one template serves the htmx <dialog> fragment and, without JavaScript, a full page.

A popup template extends templates/includes/popup_base.html and fills its blocks: htmx requests get
just the dialog (opened as a modal by static/js/app.js); other requests get the whole page with the
dialog shown in place. A form the popup refuses answers 422, or 409 when it was overtaken.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from autumn_admin.dashboard.fragments import action_done
from customers.errors import ServiceError
from customers.models import Customer

FORM_INVALID = 422
CONFLICT = 409


def render_popup(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    """The popup for htmx or as a page: its template chooses by `request.htmx`."""
    return render(request, template, context, status=status)


def popup_action(
    request: HttpRequest,
    customer: Customer,
    *,
    form,
    act: Callable[[], str],
    template: str,
    context: dict,
    sections: list[str],
) -> HttpResponse:
    """The one shape of a popup's action: GET shows the form; a valid POST runs `act()` (one service call, which
    returns the message to show) and refreshes the page's `sections`; a refusal (the form's or the service's)
    shows the form again with its message (422)."""
    status = FORM_INVALID if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            message = act()
        except ServiceError as e:
            form.add_service_error(e)
        else:
            return action_done(request, customer, message, sections)
    return render_popup(request, template, {"customer": customer, "form": form, **context}, status=status)
