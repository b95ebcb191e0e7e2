"""Dashboard actions on a customer's balances, rewards and products; the Stripe status page and webhook.

Each view: load the customer with its permission check → bind the form → call the service →
answer the popup again with the message (422, 409 for a concurrent change) or, on success,
the refreshed parts of the customer page (htmx) or a redirect (plain form post).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.forms.billing import BalanceEditForm, ProductCustomizeForm, RewardAddForm
from autumn_admin.dashboard.fragments import page_sections
from autumn_admin.dashboard.permissions import APPLY_REWARD, CUSTOMIZE_PRODUCT, EDIT_BALANCE, customer_for_action
from autumn_admin.dashboard.popups import CONFLICT, FORM_INVALID, render_popup
from billing.invoice_preview import UpcomingInvoice, upcoming_invoice
from billing.models import LIVE_PRODUCT_STATUSES, Balance, CustomerProduct, CustomerReward, Price, StripeEvent
from billing.quantities import parse_quantity
from billing.services.balances import balance_add, balance_set, balances_reset_due
from billing.services.products import product_customize
from billing.services.rewards import reward_apply, reward_remove
from billing.stripe_io import client as stripe_client
from billing.stripe_io import sync as stripe_sync
from billing.stripe_io import webhooks as stripe_webhooks
from customers.audit import AuditAction
from customers.errors import Conflict, ServiceError
from customers.formatting import format_qty
from customers.models import AuditEntry, Customer
from customers.stale import StaleForm

BALANCE_EDIT_ACTIONS = (AuditAction.BALANCE_SET, AuditAction.BALANCE_ADD)


def _done(request, customer, message: str, sections: list[str], *, feature_ids=()) -> HttpResponse:
    """After a change: htmx gets the refreshed sections (the popup, its target, is emptied and so
    closes); a plain post is redirected back to the customer page with the message."""
    if request.htmx:
        return HttpResponse(page_sections(request, customer, sections, feature_ids=feature_ids, message=message))
    messages.success(request, message)
    return redirect("customers:detail", customer.customer_id)


# --- balances -----------------------------------------------------------------------------------


@dataclass
class InvoiceImpact:
    """The next invoice now and with the balance at the proposed value."""

    before: UpcomingInvoice
    after: UpcomingInvoice | None
    priced: bool  # does this balance's overage appear on invoices at all?

    @property
    def delta(self) -> int:
        return 0 if self.after is None else self.after.total - self.before.total


def _impact_context(customer, balance: Balance, proposed: Decimal | None) -> dict:
    before = upcoming_invoice(customer)
    after = None if proposed is None else upcoming_invoice(customer, remaining_overrides={balance.pk: proposed})
    priced = (
        balance.overage_allowed
        and not balance.unlimited
        and balance.customer_product_id is not None
        and (
            Price.objects.filter(
                product_id=balance.customer_product.product_id, type=Price.Type.USAGE, feature_id=balance.feature_id
            ).exists()
        )
    )
    return {
        "balance": balance,
        "proposed": proposed,
        "granted_after": None if proposed is None else balance.granted + proposed - balance.remaining,
        "overage_after": None if proposed is None else max(Decimal(0), -proposed),
        "impact": InvoiceImpact(before=before, after=after, priced=priced),
    }


def _proposed(mode: str, raw, current: Decimal) -> Decimal | None:
    try:
        value = parse_quantity(raw)
    except ServiceError:
        return None
    return current + value if mode == BalanceEditForm.ADD else value


def _balance_popup(request, customer, balance: Balance, form: BalanceEditForm, *, proposed=None, status=200):
    history = AuditEntry.objects.filter(
        target_type="balance",
        target_id=str(balance.pk),
        action__in=BALANCE_EDIT_ACTIONS,
    ).order_by("-created_at", "-id")[:5]
    can_customize = (
        balance.customer_product_id is not None
        and request.user.has_perm(CUSTOMIZE_PRODUCT)
        and balance.customer_product.status in LIVE_PRODUCT_STATUSES
    )
    return render_popup(
        request,
        "billing/balance_edit.html",
        {
            "customer": customer,
            "form": form,
            "history": history,
            "can_customize": can_customize,
            **_impact_context(customer, balance, proposed),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def balance_edit(request, customer_id: str, balance_pk: int):
    customer = customer_for_action(request, customer_id, EDIT_BALANCE)
    balances_reset_due(customer=customer)  # the figures shown are today's
    balance = get_object_or_404(
        Balance.objects.select_related("feature", "customer_product__product"),
        pk=balance_pk,
        customer=customer,
    )
    if request.method == "GET":
        if request.GET.get("preview"):  # the popup's live preview of what the value would do
            proposed = _proposed(request.GET.get("mode", ""), request.GET.get("value"), balance.remaining)
            return render(request, "billing/balance_edit.html#impact", _impact_context(customer, balance, proposed))
        form = BalanceEditForm(initial={"mode": BalanceEditForm.SET, "expected_remaining": balance.remaining})
        return _balance_popup(request, customer, balance, form)
    if request.POST.get("preview"):  # "Preview" without JavaScript: show the effect, change nothing
        form = BalanceEditForm(initial=request.POST.dict())
        proposed = _proposed(request.POST.get("mode", ""), request.POST.get("value"), balance.remaining)
        return _balance_popup(request, customer, balance, form, proposed=proposed)

    form = BalanceEditForm(request.POST)
    status = FORM_INVALID
    if form.is_valid():
        data = form.cleaned_data
        kwargs = {
            "balance": balance,
            "actor": request.user,
            "reason": data["reason"],
            "expected_remaining": data["expected_remaining"],
        }
        if data["next_reset_at"] is not None:
            kwargs["next_reset_at"] = data["next_reset_at"]
        try:
            if data["mode"] == BalanceEditForm.ADD:
                updated = balance_add(delta=data["value"], **kwargs)
            else:
                updated = balance_set(new_balance=data["value"], **kwargs)
        except ServiceError as e:
            form.add_service_error(e)
            if isinstance(e, Conflict):
                status = CONFLICT
                balance.refresh_from_db()
                # Submitting again after reading the new figures applies the edit to them.
                form.data = form.data.copy()
                form.data["expected_remaining"] = str(balance.remaining)
        else:
            return _done(
                request,
                customer,
                f"{updated.feature.name} balance is now {format_qty(updated.remaining)}.",
                ["upcoming-invoice", "sidebar-activity"],
                feature_ids=[updated.feature_id],
            )
    proposed = _proposed(request.POST.get("mode", ""), request.POST.get("value"), balance.remaining)
    return _balance_popup(request, customer, balance, form, proposed=proposed, status=status)


# --- rewards ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def reward_add(request, customer_id: str):
    customer = customer_for_action(request, customer_id, APPLY_REWARD)
    form = RewardAddForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        reward = form.cleaned_data["reward"]
        try:
            reward_apply(customer=customer, reward=reward, actor=request.user)
        except ServiceError as e:
            form.add_service_error(e)
        else:
            return _done(
                request,
                customer,
                f"Added {reward.name} to {customer.display_name}.",
                ["sidebar-rewards", "upcoming-invoice", "sidebar-activity"],
            )
    applied = set(
        CustomerReward.objects.filter(customer=customer, removed_at__isnull=True).values_list("reward_id", flat=True)
    )
    return render_popup(
        request,
        "billing/reward_add.html",
        {"customer": customer, "form": form, "applied": applied},
        status=FORM_INVALID if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
def reward_remove_view(request, customer_id: str, cr_pk: int):
    customer = customer_for_action(request, customer_id, APPLY_REWARD)
    applied = get_object_or_404(
        CustomerReward.objects.select_related("reward"), pk=cr_pk, customer=customer, removed_at__isnull=True
    )
    if request.method == "POST":
        reward_remove(customer_reward=applied, actor=request.user)
        return _done(
            request,
            customer,
            f"Removed {applied.reward.name} from {customer.display_name}.",
            ["sidebar-rewards", "upcoming-invoice", "sidebar-activity"],
        )
    return render_popup(request, "billing/reward_remove.html", {"customer": customer, "applied": applied})


# --- custom products ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def product_customize_view(request, customer_id: str, cp_pk: int):
    customer = customer_for_action(request, customer_id, CUSTOMIZE_PRODUCT)
    products = CustomerProduct.objects.select_related("product").filter(customer=customer)
    if request.method == "GET":
        products = products.filter(status__in=LIVE_PRODUCT_STATUSES)
        balances_reset_due(customer=customer)  # the figures shown are today's
    # A form posted after the product was replaced is answered with that conflict, not a 404.
    cp = get_object_or_404(products, pk=cp_pk)
    items, balances = _customize_basis(cp)
    form = ProductCustomizeForm(
        request.POST if request.method == "POST" else None, product_items=items, balances=balances
    )
    status = FORM_INVALID if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            new_cp = product_customize(
                customer=customer,
                customer_product=cp,
                items=form.cleaned_data["changes"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
                expected=form.cleaned_data["expected"],
            )
        except ServiceError as e:
            if isinstance(e, StaleForm):
                # Show the current figures; submitting again applies the entries to them.
                status = CONFLICT
                items, balances = _customize_basis(cp)
                form = ProductCustomizeForm(request.POST, product_items=items, balances=balances)
                form.based_on(items, balances)
                form.is_valid()
            form.add_service_error(e)
        else:
            return _done(
                request,
                customer,
                f"{customer.display_name} is now on a custom {new_cp.product.name}.",
                ["products", "features", "upcoming-invoice", "sidebar-activity"],
            )
    by_feature = {b.feature_id: b for b in balances}
    fields = {item.pk: form[name] for item, name in form.item_fields}
    rows = [(item, fields.get(item.pk), by_feature.get(item.feature_id)) for item in items]
    return render_popup(
        request,
        "billing/product_customize.html",
        {"customer": customer, "cp": cp, "form": form, "rows": rows},
        status=status,
    )


def _customize_basis(cp: CustomerProduct) -> tuple[list, list]:
    """The product's items and the balances the Customize form is based on, as stored now."""
    return (
        list(cp.product.items.select_related("feature").order_by("id")),
        list(Balance.objects.filter(customer_product=cp).order_by("id")),
    )


# --- Stripe ------------------------------------------------------------------------------------


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
