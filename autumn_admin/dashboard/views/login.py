"""The login page. With DEBUG on (a developer's machine) it names the demo logins that exist, so nobody has to
read the README to get in; the password is named only when it is the default one."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views

DEMO_LOGINS = (("ops", "Ops: everything"), ("support", "Support: balance edits"), ("viewer", "Viewer: read only"))


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if settings.DEBUG:
            names = dict(DEMO_LOGINS)
            present = (
                get_user_model().objects.filter(username__in=names, is_active=True).values_list("username", flat=True)
            )
            context["demo_logins"] = [(u, names[u]) for u, _ in DEMO_LOGINS if u in set(present)]
            context["demo_password"] = "" if "DEMO_PASSWORD" in os.environ else "demo"
        return context
