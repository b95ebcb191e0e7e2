from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path, re_path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from autumn_admin.api.errors import error_response, internal_error_response
from autumn_admin.api.hot import HOT, served_lean
from autumn_admin.api.main import api
from autumn_admin.dashboard.environment import switch_env
from autumn_admin.dashboard.views import api_keys as api_key_views
from autumn_admin.dashboard.views import bulk as bulk_views
from autumn_admin.dashboard.views import catalogue as catalogue_views
from autumn_admin.dashboard.views import login as login_views
from autumn_admin.dashboard.views import overview as overview_views
from autumn_admin.dashboard.views import stripe as stripe_views

admin.site.site_header = "Billing admin"
admin.site.site_title = "Billing admin"


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


@csrf_exempt
def api_not_found(request, rest: str = ""):
    return error_response(request, 404, f"There is no endpoint {request.method} {request.path}.", "not_found")


def server_error(request):
    """Django's 500 (DEBUG off) for what fails outside the API's own handling: JSON under /v1/."""
    if request.path.startswith("/v1/"):
        return internal_error_response(request)
    return defaults.server_error(request)


handler500 = server_error

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="customers:list", permanent=False)),
    path("login/", login_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("env/", switch_env, name="switch-env"),
    path("healthz", healthz),
    path("admin/", admin.site.urls),
    path("", include("autumn_admin.dashboard.customers_urls")),
    path("customers/", include("autumn_admin.dashboard.billing_urls")),
    path("catalogue/", catalogue_views.catalogue, name="catalogue"),
    path("stripe/", stripe_views.stripe_status, name="stripe-status"),
    path("webhooks/stripe", stripe_views.stripe_webhook, name="stripe-webhook"),
    path("overview/", overview_views.overview_page, name="overview"),
    path("jobs/", bulk_views.job_list, name="jobs"),
    path("jobs/<int:pk>/", bulk_views.job_detail, name="job"),
    path("jobs/<int:pk>/cancel/", bulk_views.job_cancel, name="job-cancel"),
    path("api-keys/", api_key_views.api_key_list, name="api-keys"),
    path("api-keys/<int:pk>/revoke/", api_key_views.api_key_revoke_view, name="api-key-revoke"),
    *[path(f"v1/{hot}", served_lean(hot)) for hot in HOT],  # the lean path first; else the operation
    path("v1/", api.urls),
    re_path(r"^v1/(?P<rest>.*)$", api_not_found),
]
