from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

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
