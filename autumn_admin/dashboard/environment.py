"""The sandbox/live switch of the dashboard, remembered per user session."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from customers.models import Env

SESSION_KEY = "env"


def current_env(request: HttpRequest) -> str:
    env = request.session.get(SESSION_KEY, Env.SANDBOX)
    return env if env in Env.values else Env.SANDBOX


@require_POST
def switch_env(request: HttpRequest):
    env = request.POST.get("env", "")
    if env not in Env.values:
        messages.error(request, "Unknown environment.")
    else:
        request.session[SESSION_KEY] = env
    target = request.POST.get("next", "")
    # Leaving a customer page: that customer does not exist in the other environment.
    # Only a path of this site: anything else ("pro", a view's name) would be taken for a view to reverse.
    if (
        not target.startswith("/")
        or not url_has_allowed_host_and_scheme(target, {request.get_host()})
        or target.startswith("/customers/")
    ):
        target = "/customers/"
    return HttpResponseRedirect(target)
