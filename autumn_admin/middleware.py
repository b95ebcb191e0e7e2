from django.conf import settings
from django.contrib.auth.views import redirect_to_login

# Paths that answer without a dashboard login: the API authenticates with its own keys,
# Stripe signs its webhooks, and the admin has its own login page.
PUBLIC_PREFIXES = ("/login/", "/static/", "/v1/", "/webhooks/", "/admin/", "/healthz")


class LoginRequiredMiddleware:
    """Every dashboard URL requires a logged-in user."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(PUBLIC_PREFIXES):
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return self.get_response(request)
