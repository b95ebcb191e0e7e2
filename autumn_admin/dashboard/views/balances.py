"""The balance popup: one address, four answers. GET shows the form, GET with `preview` answers the
form's live preview (htmx), POST with `preview` shows the effect without JavaScript and changes
nothing, and POST saves the edit (set a new balance, or add to it). Also Create Balance (a grant outside
the plan) and deleting a grant."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from autumn_admin.dashboard.forms.balances import BalanceCreateForm, BalanceDeleteForm, BalanceEditForm
from autumn_admin.dashboard.permissions import CUSTOMIZE_PRODUCT, EDIT_BALANCE, customer_for_action
from autumn_admin.dashboard.popups import CONFLICT, popup_action, render_popup
from billing.invoice_preview import UpcomingInvoice, upcoming_invoice
from billing.models import LIVE_PRODUCT_STATUSES, Balance
from billing.quantities import overage, parse_quantity
from billing.services.balances import (
    balance_add,
    balance_create,
    balance_delete,
    balance_refusal,
    balance_set,
)
from billing.services.current import customer_bring_current
from customers.audit import AuditAction
from customers.errors import Conflict, ServiceError
from customers.formatting import format_qty
from customers.models import AuditEntry, Customer
from customers.stale import by_whom, last_change

BALANCE_EDIT_ACTIONS = (AuditAction.BALANCE_SET, AuditAction.BALANCE_ADD)
TEMPLATE = "billing/balance_edit.html"


@dataclass
class InvoiceImpact:
    """The next invoice now and with the balance at the proposed value."""

    before: UpcomingInvoice
    after: UpcomingInvoice | None
    priced: bool  # does this balance's overage appear on invoices at all?

    @property
    def delta(self) -> int:
        return 0 if self.after is None else self.after.total - self.before.total


def _impact_context(customer: Customer, balance: Balance, proposed: Decimal | None) -> dict:
    """What the value typed would do; a value the service would refuse says why instead (`refused`)."""
    refused = "" if proposed is None else balance_refusal(balance, proposed)
    if refused:
        proposed = None
    before = upcoming_invoice(customer)
    after = None if proposed is None else upcoming_invoice(customer, remaining_overrides={balance.pk: proposed})
    return {
        "balance": balance,
        "refused": refused,
        "proposed": proposed,
        "granted_after": None if proposed is None else balance.granted + proposed - balance.remaining,
        "overage_after": None if proposed is None else overage(proposed),
        "impact": InvoiceImpact(before=before, after=after, priced=balance.overage_price() is not None),
    }


def _proposed(params, current: Decimal) -> Decimal | None:
    """The balance the form's `mode` and `value` would give, or None while the value is no number."""
    try:
        value = parse_quantity(params.get("value"))
    except ServiceError:
        return None
    return current + value if params.get("mode", "") == BalanceEditForm.ADD else value


def _balance_context(request, customer, balance: Balance, proposed: Decimal | None) -> dict:
    """What the popup shows besides the form: the balance's recent edits and what the value typed would do."""
    history = AuditEntry.objects.filter(
        target_type="balance",
        # The balances it continues (Customize recreates a product's balances) are its history too.
        target_id__in=[str(pk) for pk in [*balance.earlier_ids, balance.pk]],
        action__in=BALANCE_EDIT_ACTIONS,
    ).order_by("-created_at", "-id")[:5]
    can_customize = (
        balance.customer_product_id is not None
        and request.user.has_perm(CUSTOMIZE_PRODUCT)
        and balance.customer_product.status in LIVE_PRODUCT_STATUSES
    )
    return {"history": history, "can_customize": can_customize, **_impact_context(customer, balance, proposed)}


def _balance_popup(request, customer, balance: Balance, form: BalanceEditForm, *, proposed=None, status=200):
    context = {"customer": customer, "form": form, **_balance_context(request, customer, balance, proposed)}
    return render_popup(request, TEMPLATE, context, status=status)


def _show_form(request, customer: Customer, balance: Balance):
    form = BalanceEditForm(initial={"mode": BalanceEditForm.SET, "expected_remaining": balance.remaining})
    return _balance_popup(request, customer, balance, form)


def _live_preview(request, customer: Customer, balance: Balance):
    """The popup's preview of what the value typed would do, as the user types (htmx)."""
    proposed = _proposed(request.GET, balance.remaining)
    return render(request, f"{TEMPLATE}#impact", _impact_context(customer, balance, proposed))


def _preview_without_js(request, customer: Customer, balance: Balance):
    """ "Preview" without JavaScript: the popup again with the effect shown, nothing changed."""
    form = BalanceEditForm(initial=request.POST.dict())
    proposed = _proposed(request.POST, balance.remaining)
    return _balance_popup(request, customer, balance, form, proposed=proposed)


def _apply(request, balance: Balance, data: dict) -> Balance:
    kwargs = {
        "balance": balance,
        "actor": request.user,
        "reason": data["reason"],
        "expected_remaining": data["expected_remaining"],
    }
    if data["next_reset_at"] is not None:
        kwargs["next_reset_at"] = data["next_reset_at"]
    if data["mode"] == BalanceEditForm.ADD:
        return balance_add(delta=data["value"], **kwargs)
    return balance_set(new_balance=data["value"], **kwargs)


def _save(request, customer: Customer, balance: Balance):
    form = BalanceEditForm(request.POST)

    def save() -> str:
        updated = _apply(request, balance, form.cleaned_data)
        return f"{updated.feature.name} balance is now {format_qty(updated.remaining)}."

    def overtaken(form, error: ServiceError):
        """Changed since the popup was opened: submitting again after reading the new figures applies the edit
        to them."""
        if not isinstance(error, Conflict):
            return None
        balance.refresh_from_db()
        form.data = form.data.copy()
        form.data["expected_remaining"] = str(balance.remaining)
        return form

    return popup_action(
        request,
        customer,
        form=form,
        act=save,
        overtaken=overtaken,
        template=TEMPLATE,
        # The effect of the value typed, on the figures as they are now.
        context=lambda form: _balance_context(request, customer, balance, _proposed(request.POST, balance.remaining)),
        sections=["upcoming-invoice", "sidebar-activity"],
        feature_ids=[balance.feature_id],
    )


def _replaced(request, customer: Customer, balance_pk: int):
    """A save or preview from a popup whose balance was replaced since it was opened (Customize, or a plan
    change, recreates a product's balances): 409 with what happened, the popup shown again on the balance that
    continues it, so submitting again applies the edit to the new figures. None when nothing continues it."""
    balances = Balance.objects.select_related("feature", "customer_product__product").filter(customer=customer)
    successor = next((b for b in balances.order_by("-id") if balance_pk in (b.earlier_ids or [])), None)
    if successor is None:
        return None
    product = successor.customer_product.product if successor.customer_product_id else None
    what = "was customized" if product is not None and product.is_custom else f"changed to {product}"
    who = by_whom(last_change(customer.audit_entries.filter(action__startswith="product."), lambda e: True))
    now = "unlimited" if successor.unlimited else f"{format_qty(successor.remaining)} left of "
    now += "" if successor.unlimited else f"{format_qty(successor.granted)} granted"
    form = BalanceEditForm(request.POST.copy())
    form.data["expected_remaining"] = str(successor.remaining)
    form.is_valid()  # the entries are shown again as typed, with their own errors
    form.add_error(
        None,
        f"This balance was replaced since you opened it: the plan {what}{who}. The {successor.feature.name} "
        f"balance is now {now}. Check the new figures and try again.",
    )
    return _balance_popup(
        request, customer, successor, form, proposed=_proposed(request.POST, successor.remaining), status=CONFLICT
    )


@require_http_methods(["GET", "POST"])
def balance_edit(request, customer_id: str, balance_pk: int):
    customer = customer_for_action(request, customer_id, EDIT_BALANCE)
    customer_bring_current(customer=customer)  # the figures shown are today's
    balance = Balance.objects.select_related("feature", "customer_product__product").filter(
        pk=balance_pk, customer=customer
    )
    balance = balance.first()
    if balance is None:
        replaced = _replaced(request, customer, balance_pk) if request.method == "POST" else None
        if replaced is None:
            raise Http404("No such balance.")
        return replaced
    if request.method == "GET":
        answer = _live_preview if request.GET.get("preview") else _show_form
    else:
        answer = _preview_without_js if request.POST.get("preview") else _save
    return answer(request, customer, balance)


# --- grants outside the plan: Create Balance, and deleting one --------------------------------------

GRANT_SECTIONS = ["features", "upcoming-invoice", "sidebar-activity"]


@require_http_methods(["GET", "POST"])
def balance_create_view(request, customer_id: str):
    """Create Balance: GET shows the form, POST grants the balance (or shows why not)."""
    customer = customer_for_action(request, customer_id, EDIT_BALANCE)
    form = BalanceCreateForm(request.POST if request.method == "POST" else None)

    def grant() -> str:
        balance = balance_create(customer=customer, actor=request.user, **form.grant())
        return f"Granted {format_qty(balance.granted)} {balance.feature.name} to {customer.display_name}."

    return popup_action(
        request,
        customer,
        form=form,
        act=grant,
        template="billing/balance_create.html",
        context={},
        sections=GRANT_SECTIONS,
    )


@require_http_methods(["GET", "POST"])
def balance_delete_view(request, customer_id: str, balance_pk: int):
    """Delete a granted balance, with a reason: GET asks, POST deletes."""
    customer = customer_for_action(request, customer_id, EDIT_BALANCE)
    balance = get_object_or_404(
        Balance.objects.select_related("feature"), pk=balance_pk, customer=customer, customer_product__isnull=True
    )
    form = BalanceDeleteForm(request.POST if request.method == "POST" else None)

    def delete() -> str:
        balance_delete(balance=balance, actor=request.user, reason=form.cleaned_data["reason"])
        return f"Deleted the granted {balance.feature.name} balance of {customer.display_name}."

    template = "billing/balance_delete.html"
    return popup_action(
        request,
        customer,
        form=form,
        act=delete,
        template=template,
        context={"balance": balance},
        sections=GRANT_SECTIONS,
    )
