"""A feature's usage chart on its own page (every role): 7, 30 or 90 days or this cycle, as server-rendered SVG."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from autumn_admin.dashboard.customer_lookup import get_customer_for
from autumn_admin.dashboard.environment import current_env
from billing.models import Feature, FeatureType
from billing.usage_chart import DEFAULT_RANGE, RANGES, usage_chart


@require_GET
def usage_chart_page(request, customer_id: str, feature_id: str):
    customer = get_customer_for(current_env(request), customer_id)
    feature = Feature.objects.filter(feature_id=feature_id).exclude(type=FeatureType.BOOLEAN).first()
    if feature is None:
        raise Http404(f"No metered feature {feature_id!r}.")
    chosen = request.GET.get("range", DEFAULT_RANGE)
    error = "" if chosen in RANGES else f"Unknown range {chosen[:40]!r}: showing {RANGES[DEFAULT_RANGE]}."
    chart = usage_chart(customer, feature, chosen if not error else DEFAULT_RANGE)
    context = {"customer": customer, "feature": feature, "chart": chart, "ranges": RANGES, "error": error}
    return render(request, "customers/usage_chart.html", context, status=400 if error else 200)
