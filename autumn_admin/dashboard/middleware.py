from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from autumn_admin.dashboard.environment import env_mismatch, is_own_url, page_env_of
from autumn_admin.dashboard.permissions import VIEW_CUSTOMER

# Paths that answer without a dashboard login: the API authenticates with its own keys,
# Stripe signs its webhooks, and the admin has its own login page.
PUBLIC_PREFIXES = ("/login/", "/static/", "/v1/", "/webhooks/", "/admin/", "/healthz")
# Reachable by any logged-in user, even one without a role, so they can leave.
ANY_USER_PATHS = ("/logout/",)


class LoginRequiredMiddleware:
    """Every dashboard URL requires a logged-in user with a role that may view customers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        if not path.startswith(PUBLIC_PREFIXES) and path not in ANY_USER_PATHS:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            # Loads the user's permissions once; every later check in this request reads the cache.
            if not request.user.has_perm(VIEW_CUSTOMER):
                return render(request, "403.html", {"no_role": True}, status=403)
        return self.get_response(request)


class PageEnvMiddleware:
    """Refuse a dashboard POST from a form shown for another environment than the session's, or an htmx GET
    from such a page (a popup opened after a switch in another tab would show the other environment's
    customer of the same id): 409, nothing done."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if (
            request.path.startswith(PUBLIC_PREFIXES)
            or request.path in ANY_USER_PATHS
            or getattr(view_func, "acts_in_any_env", False)
            or not request.user.is_authenticated
        ):
            return None
        problem = env_mismatch(request)
        if problem is None:
            return None
        referer = request.headers.get("Referer", "")
        back = urlsplit(referer)._replace(scheme="", netloc="").geturl() if is_own_url(request, referer) else ""
        context = {
            "problem": problem,
            "back": back if back.startswith("/") and not back.startswith("//") else "/customers/",
            "shown_env": page_env_of(request),
        }
        response = render(request, "includes/env_changed.html", context, status=409)
        if request.htmx:
            # Whatever the form targets (a dialog, an inline edit), the message opens as a popup of its own.
            response["HX-Retarget"] = "body"
            response["HX-Reswap"] = "beforeend"
        return response
