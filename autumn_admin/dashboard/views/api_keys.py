"""The API keys page (/api-keys/): ops create keys, see each once, and revoke them."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.forms.api_keys import ApiKeyForm
from autumn_admin.dashboard.permissions import MANAGE_API_KEYS
from autumn_admin.dashboard.popups import render_popup
from customers.errors import ServiceError
from customers.models import ApiKey, ApiKeyKind, Env
from customers.services.api_keys import api_key_create, api_key_revoke


@never_cache  # the page that shows a new key must not be kept by any cache
@permission_required(MANAGE_API_KEYS, raise_exception=True)
def api_key_list(request):
    env = current_env(request)
    form = ApiKeyForm(request.POST or None)
    new_key = created = None
    if request.method == "POST" and form.is_valid():
        try:
            created, new_key = api_key_create(env=env, name=form.cleaned_data["name"], actor=request.user)
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            form = ApiKeyForm()
    keys = (
        ApiKey.objects.filter(env=env, kind=ApiKeyKind.SECRET)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at", "-id")
    )
    status = 201 if new_key else (422 if form.errors else 200)
    return render(
        request,
        "customers/api_keys.html",
        {"form": form, "keys": keys, "new_key": new_key, "created": created, "env_label": Env(env).label, "env": env},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@permission_required(MANAGE_API_KEYS, raise_exception=True)
def api_key_revoke_view(request, pk: int):
    """GET asks first (a popup for htmx, a page of its own without JavaScript); POST revokes and goes back
    to the keys, where the key is listed as revoked."""
    api_key = get_object_or_404(
        ApiKey, pk=pk, env=current_env(request), kind=ApiKeyKind.SECRET
    )  # as listed: this environment's
    if request.method == "GET":
        if api_key.revoked_at is not None:
            messages.info(request, f"“{api_key.name}” was already revoked.")
            return redirect("api-keys")
        return render_popup(
            request, "customers/api_key_revoke.html", {"api_key": api_key, "close_url": reverse("api-keys")}
        )
    if api_key.revoked_at is None:
        api_key_revoke(api_key=api_key, actor=request.user)
        messages.success(request, f"Revoked “{api_key.name}” ({api_key.prefix}…): it no longer works.")
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": reverse("api-keys")})
    return redirect("api-keys")
