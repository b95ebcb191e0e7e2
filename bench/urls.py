"""The app's URLs, plus `/bench/floor/`: a trivial view behind the dashboard's login.

`/healthz` is public, so it skips what every dashboard page pays before its own work: loading the
session, the user and the user's role (autumn_admin.dashboard.middleware). This view pays exactly that and
renders nothing: the floor a customer page is compared with. Only the benchmark's server uses it.
"""

from django.http import HttpResponse
from django.urls import path

from autumn_admin.urls import urlpatterns as app_urlpatterns


def floor(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/floor/", floor), *app_urlpatterns]
