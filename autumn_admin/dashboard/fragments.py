"""The parts of the customer page that an action changed, rendered for htmx to swap in place."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest
from django.utils.html import format_html

from autumn_admin.dashboard.customer_page import customer_page_context
from autumn_admin.dashboard.popups import render_oob
from customers.models import Customer

PAGE = "customers/detail.html"


def page_sections(
    request: HttpRequest,
    customer: Customer,
    names: Iterable[str],
    *,
    feature_ids: Iterable[int] = (),
    message: str = "",
    context: dict | None = None,
) -> str:
    """Out-of-band swaps of the named page partials (and the balance rows of these features),
    plus a status message. The response's main content is empty, which closes the popup."""
    context = context if context is not None else customer_page_context(customer, request=request)
    parts = [render_oob(f"{PAGE}#{name}", context, request) for name in names]
    wanted = set(feature_ids)
    for fb in context["feature_rows"]:
        if fb.feature.pk in wanted:
            parts.append(render_oob(f"{PAGE}#balance-row", {**context, "fb": fb}, request))
    if message:
        parts.append(
            format_html('<div hx-swap-oob="beforeend:body"><p class="toast" role="status">{}</p></div>', message)
        )
    return "\n".join(parts)
