"""A customer's Details edited in place: the id; name, email and fingerprint together; or the metadata."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from autumn_admin.dashboard.customer_page import customer_page_context
from autumn_admin.dashboard.forms.details import ContactForm, DetailFieldForm, MetadataForm
from autumn_admin.dashboard.fragments import page_sections
from autumn_admin.dashboard.permissions import CHANGE_CUSTOMER, customer_for_action
from autumn_admin.dashboard.popups import popup_action
from customers.errors import ServiceError
from customers.models import DETAIL_FIELDS, TEXT_FIELDS, Customer
from customers.services.customers import customer_update
from customers.stale import StaleForm


def _details_section(request, customer, *, message: str = "") -> HttpResponse:
    """The sidebar's Details, swapped back in place of an inline form (htmx)."""
    context = customer_page_context(customer, request=request)
    html = render_to_string("customers/detail.html#sidebar-details", context, request=request)
    if message:
        html += page_sections(
            request, customer, ["customer-head", "sidebar-activity"], message=message, context=context
        )
    return retarget(reswap(HttpResponse(html), "outerHTML"), "#section-sidebar-details")


def _field_form(request, customer: Customer, field: str) -> ContactForm | DetailFieldForm | MetadataForm:
    data = request.POST if request.method == "POST" else None
    if field == "metadata":
        return MetadataForm(data, customer=customer)
    if field in TEXT_FIELDS:
        return ContactForm(data, field=field, customer=customer)
    return DetailFieldForm(data, field=field, customer=customer)


def _what_changed(field: str, kwargs: dict) -> str:
    if field == "id":
        return "the ID"
    if field in TEXT_FIELDS:
        names = [DETAIL_FIELDS[f].lower() for f in TEXT_FIELDS if f in kwargs]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return DETAIL_FIELDS[field].lower()


def _saved(request, customer_id: str, field: str, updated: Customer, what: str) -> HttpResponse:
    """After a save: the Details in place (htmx) or the page, with the message."""
    message = f"Updated {what} of {updated.display_name}."
    if field == "id" and updated.customer_id != customer_id:
        # The page lives at the new id now.
        messages.success(request, message)
        url = reverse("customers:detail", args=[updated.customer_id])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    if request.htmx:
        return _details_section(request, updated, message=message)
    messages.success(request, message)
    return redirect("customers:detail", updated.customer_id)


@require_http_methods(["GET", "POST"])
def details_edit(request, customer_id: str):
    customer = customer_for_action(request, customer_id, CHANGE_CUSTOMER)
    field = request.GET.get("field", "")
    if field not in DETAIL_FIELDS:  # "Cancel" of an inline form
        return _details_section(request, customer) if request.htmx else redirect("customers:detail", customer_id)
    form = _field_form(request, customer, field)

    def save() -> HttpResponse:
        kwargs = form.service_kwargs()
        if field in TEXT_FIELDS and not form.changed():
            message = "Nothing to update: the name, email and fingerprint are as they were."
            if request.htmx:
                return _details_section(request, customer, message=message)
            messages.info(request, message)
            return redirect("customers:detail", customer_id)
        updated = customer_update(customer=customer, actor=request.user, **kwargs)
        return _saved(request, customer_id, field, updated, _what_changed(field, kwargs))

    def overtaken(form, error: ServiceError):
        """Changed since the form was opened: the form shows the current value, and saving again replaces it."""
        if not isinstance(error, StaleForm):
            return None
        customer.refresh_from_db()
        form.based_on(customer)
        return form

    return popup_action(
        request,
        customer,
        form=form,
        act=save,
        overtaken=overtaken,
        template="customers/details_edit.html" + ("#field-form" if request.htmx else ""),
        context={
            "field": field,
            "label": "Name, email and fingerprint" if field in TEXT_FIELDS else DETAIL_FIELDS[field],
            "contact": field in TEXT_FIELDS,
        },
    )
