"""The sandbox/live switch of the dashboard, remembered per user session, and the guard that keeps a page
shown for one environment from acting on the other.

Every dashboard form carries the environment it was rendered for (`{% page_env %}`, a hidden field next to
the CSRF token), and every htmx request its page's (`X-Page-Env`). A switch in another tab changes the
session's environment under an open page: a Delete popup opened for sandbox `twin` would otherwise delete
the live `twin`. `middleware.PageEnvMiddleware` refuses every dashboard POST whose form says another
environment (or none), and every htmx GET whose page does, before any view runs: nothing changes.
"""

from django import template
from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from customers.models import Env

SESSION_KEY = "env"
PAGE_ENV_FIELD = "page_env"  # the hidden field of every dashboard form: the environment it was shown for


def current_env(request: HttpRequest) -> str:
    env = request.session.get(SESSION_KEY, Env.SANDBOX)
    return env if env in Env.values else Env.SANDBOX


def acts_in_any_env(view):
    """Mark a view whose POST is not about one environment's data (the switch itself)."""
    view.acts_in_any_env = True
    return view


@require_POST
@acts_in_any_env
def switch_env(request: HttpRequest):
    env = request.POST.get("env", "")
    if env not in Env.values:
        messages.error(request, "Unknown environment.")
    else:
        request.session[SESSION_KEY] = env
    target = request.POST.get("next", "")
    # Leaving a customer page: that customer does not exist in the other environment.
    # Only a path of this site: anything else ("pro", a view's name) would be taken for a view to reverse.
    if not _is_own_path(request, target) or target.startswith("/customers/"):
        target = "/customers/"
    return HttpResponseRedirect(target)


def _is_own_path(request: HttpRequest, target: str) -> bool:
    return target.startswith("/") and url_has_allowed_host_and_scheme(target, {request.get_host()})


# --- the page's environment on every form ----------------------------------------------------------------

register = template.Library()  # a builtin of the templates (settings.TEMPLATES): no {% load %} needed


@register.simple_tag(takes_context=True)
def page_env(context) -> str:
    """`{% page_env %}`: the hidden field saying which environment this form was shown for (none when rendered
    without a request: such a form is refused as not saying, never taken for either environment)."""
    request = getattr(context, "request", None)
    if request is None:
        return ""
    return format_html('<input type="hidden" name="{}" value="{}">', PAGE_ENV_FIELD, current_env(request))


PAGE_ENV_HEADER = "X-Page-Env"  # what every htmx request of a page says (base.html's hx-headers)


def page_env_of(request: HttpRequest) -> str | None:
    """The environment the page or form behind this request was shown for: a POST's form field; an htmx
    GET's header (a popup opened from a page shown before a switch). None when there is nothing to compare
    (a plain GET, which only shows the session's environment)."""
    if request.method == "POST":
        return request.POST.get(PAGE_ENV_FIELD, "")
    if request.headers.get("HX-Request") == "true" and PAGE_ENV_HEADER in request.headers:
        return request.headers[PAGE_ENV_HEADER]
    return None


def env_mismatch(request: HttpRequest) -> str | None:
    """Why this request may not act in (or show) the session's environment, or None when its page was shown
    for it."""
    now = current_env(request)
    shown = page_env_of(request)
    if shown is None or shown == now:
        return None
    if shown not in Env.values:
        return (
            f"This form does not say which environment it was opened in, so nothing was done. "
            f"Reload the page to act in {Env(now).label}."
        )
    opened = "This form was opened" if request.method == "POST" else "This page was shown"
    return (
        f"{opened} in {Env(shown).label}; you have since switched to {Env(now).label}. "
        f"Nothing was done. Reload the page to act in {Env(now).label}."
    )


def is_own_url(request: HttpRequest, target: str) -> bool:
    return bool(target) and url_has_allowed_host_and_scheme(target, {request.get_host()})
