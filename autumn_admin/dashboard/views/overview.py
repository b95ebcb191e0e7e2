"""The Overview page (every role): what needs a look today, each a link into the filtered list or the job."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from autumn_admin.dashboard.environment import current_env
from billing.overview import TRIAL_WINDOW, overview


@require_GET
def overview_page(request):
    return render(
        request,
        "overview.html",
        {"o": overview(current_env(request)), "trial_days": TRIAL_WINDOW.days},
    )
