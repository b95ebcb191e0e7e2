"""Stripe on the dashboard: the status page of the current environment's connection, and the webhook."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from autumn_admin.dashboard.environment import current_env
from billing.models import StripeEvent
from billing.stripe_inbound import sync as stripe_sync
from billing.stripe_inbound import webhooks as stripe_webhooks
from billing.stripe_io import client as stripe_client
from customers.models import Customer


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's events: verified by signature (the secret that verifies names the environment),
    applied once each, in any order, to that environment's customers only."""
    try:
        event, signed_for = stripe_webhooks.event_from_webhook(
            request.body, request.headers.get("Stripe-Signature", "")
        )
    except stripe_webhooks.WebhookRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    outcome = stripe_sync.process_event(event, signed_for=signed_for)
    return JsonResponse({"received": True, "event": event["id"], "outcome": outcome})


@require_GET
def stripe_status(request):
    """Read-only, for every role: the current environment's Stripe connection, its recent webhook
    events, and its customers failing to sync."""
    env = current_env(request)
    failing = Customer.objects.alive().filter(env=env).exclude(stripe_sync_error="").order_by("-updated_at")
    return render(
        request,
        "billing/stripe_status.html",
        {
            "status": stripe_client.stripe_status(env),
            "webhook_url": request.build_absolute_uri("/webhooks/stripe"),
            "recent_events": StripeEvent.objects.filter(env=env).order_by("-received_at", "-id")[:10],
            "failing": failing[:50],
            "linked_count": Customer.objects.alive().filter(env=env).exclude(stripe_id="").count(),
        },
    )
