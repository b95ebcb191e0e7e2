"""The catalogue, read-only, for every role: what each plan gives and costs, and what each feature is."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from autumn_admin.dashboard.environment import current_env
from billing.catalogue_page import catalogue_features, catalogue_plans, catalogue_rewards


@require_GET
def catalogue(request):
    """Plans with their versions, items and prices, features with their credit costs, and rewards. Superusers
    change them in Django admin, applications with `atmn push`; nobody changes them here."""
    env = current_env(request)
    return render(
        request,
        "billing/catalogue.html",
        {
            "env": env,
            "plans": catalogue_plans(env),
            "features": catalogue_features(),
            "rewards": catalogue_rewards(),
        },
    )
