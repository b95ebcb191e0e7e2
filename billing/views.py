from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from autumn_admin.environment import current_env
from billing import stripe_gateway, stripe_sync
from billing.models import StripeEvent
from customers.models import Customer


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's events: verified by signature, applied once each, in any order."""
    try:
        event = stripe_gateway.event_from_webhook(request.body, request.headers.get("Stripe-Signature", ""))
    except stripe_gateway.WebhookRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    outcome = stripe_sync.process_event(event)
    return JsonResponse({"received": True, "event": event["id"], "outcome": outcome})


@require_GET
def stripe_status(request):
    """Read-only, for every role: whether Stripe is connected, recent events, customers failing to sync."""
    env = current_env(request)
    failing = Customer.objects.alive().filter(env=env).exclude(stripe_sync_error="").order_by("-updated_at")
    return render(request, "billing/stripe_status.html", {
        "status": stripe_gateway.stripe_status(),
        "webhook_url": request.build_absolute_uri("/webhooks/stripe"),
        "webhook_secret_set": bool(settings.STRIPE_WEBHOOK_SECRET),
        "recent_events": StripeEvent.objects.order_by("-received_at", "-id")[:10],
        "failing": failing[:50],
        "linked_count": Customer.objects.alive().filter(env=env).exclude(stripe_id="").count(),
    })
