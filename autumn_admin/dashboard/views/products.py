"""Customize: a custom version of a customer's product, with new allowances."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from autumn_admin.dashboard.forms.products import ProductCustomizeForm
from autumn_admin.dashboard.permissions import CUSTOMIZE_PRODUCT, customer_for_action
from autumn_admin.dashboard.popups import popup_action
from billing.models import LIVE_PRODUCT_STATUSES, Balance, CustomerProduct
from billing.services.current import customer_bring_current
from billing.services.products import product_customize
from customers.errors import ServiceError
from customers.models import Customer
from customers.stale import StaleForm

# The parts of the customer page a custom product changes.
SECTIONS = ["products", "features", "upcoming-invoice", "sidebar-activity"]


def _customize_basis(cp: CustomerProduct) -> tuple[list, list]:
    """The product's items and the balances the Customize form is based on, as stored now."""
    return (
        list(cp.product.items.select_related("feature").order_by("id")),
        list(Balance.objects.filter(customer_product=cp).order_by("id")),
    )


def _customer_product(request, customer: Customer, cp_pk: int) -> CustomerProduct:
    products = CustomerProduct.objects.select_related("product").filter(customer=customer)
    if request.method == "GET":
        products = products.filter(status__in=LIVE_PRODUCT_STATUSES)
        customer_bring_current(customer=customer)  # the figures shown are today's
    # A form posted after the product was replaced is answered with that conflict, not a 404.
    return get_object_or_404(products, pk=cp_pk)


def _rows(form: ProductCustomizeForm) -> list:
    """Each of the product's items with its field and its balance, as the popup lists them."""
    by_feature = {b.feature_id: b for b in form.balances}
    fields = {item.pk: form[name] for item, name in form.item_fields}
    return [(item, fields.get(item.pk), by_feature.get(item.feature_id)) for item in form.product_items]


@require_http_methods(["GET", "POST"])
def product_customize_view(request, customer_id: str, cp_pk: int):
    customer = customer_for_action(request, customer_id, CUSTOMIZE_PRODUCT)
    cp = _customer_product(request, customer, cp_pk)
    items, balances = _customize_basis(cp)
    data = request.POST if request.method == "POST" else None
    form = ProductCustomizeForm(data, product_items=items, balances=balances)

    def customize() -> str:
        new_cp = product_customize(
            customer=customer,
            customer_product=cp,
            items=form.cleaned_data["changes"],
            actor=request.user,
            reason=form.cleaned_data["reason"],
            expected=form.cleaned_data["expected"],
        )
        return f"{customer.display_name} is now on a custom {new_cp.product.name}."

    def overtaken(form, error: ServiceError) -> ProductCustomizeForm | None:
        """After a concurrent change, the form stands on the current figures, so submitting again applies the
        entries to them."""
        if not isinstance(error, StaleForm):
            return None
        items, balances = _customize_basis(cp)
        current = ProductCustomizeForm(request.POST, product_items=items, balances=balances)
        current.based_on(items, balances)
        current.is_valid()
        return current

    return popup_action(
        request,
        customer,
        form=form,
        act=customize,
        overtaken=overtaken,
        template="billing/product_customize.html",
        context=lambda form: {"cp": cp, "rows": _rows(form)},
        sections=SECTIONS,
    )
