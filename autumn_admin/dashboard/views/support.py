"""The support tools: Record Usage and Check Balance from a balance row's menu, the customer object as
customers.get answers it, and Create Customer on the customers list."""

from __future__ import annotations

import json

from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from autumn_admin.dashboard.customer_lookup import get_customer_for
from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.forms.support import BalanceCheckForm, CustomerCreateForm, UsageRecordForm
from autumn_admin.dashboard.permissions import (
    CHECK_BALANCE,
    CREATE_CUSTOMER,
    RECORD_USAGE,
    VIEW_CUSTOMER,
    customer_for_action,
    require_perm,
)
from autumn_admin.dashboard.popups import FORM_INVALID, popup_action, render_popup
from billing.models import Feature, FeatureType
from billing.services.current import customer_bring_current
from billing.services.support import balance_check_run, usage_record
from billing.shapes.balances import check_json
from billing.shapes.customers import customer_json, load_customer
from customers.errors import ServiceError
from customers.formatting import format_qty
from customers.services.customers import customer_create

# The expansions Autumn's SDKs ask customers.get for, where they are built.
CUSTOMER_EXPAND = ("invoices", "rewards", "entities")


def _feature(feature_id: str, *, metered: bool = False) -> Feature:
    # Archived features too: archiving hides a feature from new plans, never the balances customers hold.
    feature = Feature.objects.filter(feature_id=feature_id).first()
    if feature is None or (metered and feature.type == FeatureType.BOOLEAN):
        raise Http404("No such feature.")
    return feature


def _pretty(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


@require_http_methods(["GET", "POST"])
def usage_record_view(request, customer_id: str, feature_id: str):
    """Record Usage: GET shows the form; POST tracks the value as balances.track would, audited with the reason."""
    customer = customer_for_action(request, customer_id, RECORD_USAGE)
    feature = _feature(feature_id, metered=True)
    form = UsageRecordForm(request.POST if request.method == "POST" else None)

    def record() -> str:
        data = form.cleaned_data
        usage_record(
            customer=customer,
            feature=feature,
            value=data["value"],
            properties=data["properties"],
            actor=request.user,
            reason=data["reason"],
        )
        return f"Recorded {format_qty(data['value'])} {feature.name} usage for {customer.display_name}."

    return popup_action(
        request,
        customer,
        form=form,
        act=record,
        template="billing/usage_record.html",
        context={"feature": feature},
        sections=["upcoming-invoice", "sidebar-activity"],
        feature_ids=[feature.pk],
    )


@require_http_methods(["GET", "POST"])
def balance_check_view(request, customer_id: str, feature_id: str):
    """Check Balance: GET shows the form; POST runs balances.check (nothing tracked) and shows its answer as the
    API gives it, recording in the audit trail who asked."""
    customer = customer_for_action(request, customer_id, CHECK_BALANCE)
    feature = _feature(feature_id)
    form = BalanceCheckForm(request.POST if request.method == "POST" else None)
    template, context = "billing/balance_check.html", {"feature": feature}

    def check():
        required = form.cleaned_data["required_balance"]
        result = balance_check_run(customer=customer, feature=feature, required_balance=required, actor=request.user)
        answer = check_json(customer=customer, feature=feature, required=required, result=result)
        shown = {"customer": customer, "form": form, "answer": _pretty(answer), "allowed": answer["allowed"]}
        return render_popup(request, template, {**context, **shown})

    return popup_action(request, customer, form=form, act=check, template=template, context=context)


@require_GET
def customer_object_view(request, customer_id: str):
    """The customer as customers.get answers it (with the SDKs' expansions), pretty-printed, to read or copy."""
    customer = get_customer_for(current_env(request), customer_id)
    require_perm(request, VIEW_CUSTOMER)
    customer_bring_current(customer=customer)  # as the API's reads do
    data = customer_json(load_customer(customer), expand=CUSTOMER_EXPAND)
    return render_popup(request, "customers/customer_object.html", {"customer": customer, "object_json": _pretty(data)})


@require_http_methods(["GET", "POST"])
def customer_create_view(request):
    """Create Customer: GET shows the form; POST creates the customer in the dashboard's environment on the default
    plans (as customers.get_or_create does) and opens its page. A taken id is the form's error."""
    require_perm(request, CREATE_CUSTOMER)
    form = CustomerCreateForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = FORM_INVALID
        if form.is_valid():
            try:
                with transaction.atomic():
                    customer = customer_create(
                        env=current_env(request),
                        customer_id=form.cleaned_data["id"],
                        actor=request.user,
                        **form.fields_to_create(),
                    )
            except ServiceError as e:
                form.add_service_error(e)
            else:
                page = reverse("customers:detail", args=[customer.customer_id])
                if request.htmx:  # the popup leaves for the new customer's page (a 302 would be followed in place)
                    return HttpResponse(headers={"HX-Redirect": page})
                return redirect(page)
    context = {"form": form, "close_url": reverse("customers:list")}
    return render(request, "customers/customer_create.html", context, status=status)
