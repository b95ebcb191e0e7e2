"""Login throttling (django-axes): whose address a login comes from, and the page a locked-out login gets."""

from __future__ import annotations

import ipaddress
import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def client_ip(request: HttpRequest) -> str | None:
    """The connection's address; behind a proxy (BEHIND_PROXY), the address that proxy saw.

    The proxy appends the address it received the request from to X-Forwarded-For, so only the last
    entry is its word: anything before it was sent by the client and could be made up.
    """
    if settings.BEHIND_PROXY:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if forwarded and _is_ip(forwarded[-1]):
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR") or None


def duration_text(seconds: float) -> str:
    """ "15 minutes", "1 hour", "1 hour 30 minutes": how long a lockout lasts, for people."""
    minutes = max(1, math.ceil(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """Our page for a refused login (429), with how long logging in stays blocked."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds())
    admin_login = request.path.startswith(reverse("admin:login"))
    response = render(
        request,
        "registration/locked_out.html",
        {
            "duration": duration_text(seconds),
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "login_url": reverse("admin:login") if admin_login else reverse("login"),
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
