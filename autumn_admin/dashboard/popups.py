"""Popups: one template serves the htmx <dialog> fragment and, without JavaScript, a full page.

A popup template extends templates/includes/popup_base.html and fills its blocks: htmx requests get
just the dialog (opened as a modal by static/js/app.js); other requests get the whole page with the
dialog shown in place. A form the popup refuses answers 422, or 409 when it was overtaken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

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
    act: Callable[..., str | HttpResponse],
    template: str,
    context: dict | Callable[[Any], dict],
    sections: Iterable[str] = (),
    feature_ids: Iterable[int] = (),
    preview: Callable[[], Any] | None = None,
    overtaken: Callable[[Any, ServiceError], Any] | None = None,
) -> HttpResponse:
    """The one shape of a popup's action (and of an inline edit's): GET shows the form; a valid POST runs `act()`,
    one service call, and answers with what it returns: the message to show while the page's `sections` (and
    the balance rows of `feature_ids`) are refreshed, or a response of its own (a checkout to follow, a page
    that moved). A refusal, the form's or the service's, shows the form again with its message (422).

    - `overtaken(form, error)`, for a form that carries what it showed: after a refusal because the figures
      changed since, the form standing on the current ones (shown with 409, so submitting again applies the
      entries to them); None for a refusal of another kind.
    - `preview()`, for an action shown before it is done: what it would do, shown with the form as `preview`
      on GET and POST alike (None while the form says too little). Its refusal shows and stops the action;
      `act` is given what it answered.
    - `context`: what else the template shows; a function of the form shown when it depends on it.
    """
    posted = request.method == "POST"
    status, previewed, answer = FORM_INVALID if posted else 200, None, None
    try:
        if preview is not None:
            previewed = preview()
        if posted and form.is_valid():
            answer = act(previewed) if preview is not None else act()
    except ServiceError as e:
        current = overtaken(form, e) if overtaken is not None else None
        if current is not None:
            form, status = current, CONFLICT
        form.add_service_error(e)
    if isinstance(answer, HttpResponse):
        return answer
    if answer is not None:
        return action_done(request, customer, answer, sections, feature_ids=feature_ids)
    shown = {"customer": customer, "form": form, **(context(form) if callable(context) else context)}
    if preview is not None:
        shown["preview"] = previewed
    return render_popup(request, template, shown, status=status)
