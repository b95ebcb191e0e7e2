"""Small helpers for tests that read pages."""

import html
from html.parser import HTMLParser

from django.test import Client
from django.test.client import MULTIPART_CONTENT


def page_text(response) -> str:
    """The response body with HTML entities decoded, so assertions read like the page does."""
    return html.unescape(response.content.decode())


class _FormReader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, list[str]] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "radio", "checkbox"):
            self.fields.setdefault(name, []).append(attrs.get("value") or "")
        elif tag == "input" and name and "checked" in attrs:
            self.fields.setdefault(name, []).append(attrs.get("value") or "on")
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields.setdefault(name, []).append("")
        elif tag == "option" and "selected" in attrs:
            pass  # selects are filled in by the test where it matters

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None


def form_values(response, **changes) -> dict:
    """What a browser would submit from the page's form, with `changes` typed in (a list fills
    repeated inputs of one name). The CSRF token is left out: the test client doesn't check it."""
    reader = _FormReader()
    reader.feed(response.content.decode())
    fields = {name: values if len(values) > 1 else values[0] for name, values in reader.fields.items()}
    fields.pop("csrfmiddlewaretoken", None)
    return {**fields, **changes}


def customize_basis(cp) -> str:
    """The `expected` a freshly opened Customize form of this customer product carries."""
    from autumn_admin.dashboard.forms.products import ProductCustomizeForm
    from billing.models import Balance

    return ProductCustomizeForm.expectation(
        cp.product.items.select_related("feature").order_by("id"),
        Balance.objects.filter(customer_product=cp).order_by("id"),
    )


def subscribe(customer, product, fake_stripe) -> dict:
    """Put a Stripe-linked customer on `product` through a subscription of the fake Stripe, halfway through
    its month (as a backfill would have found it). Returns the subscription."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import CustomerProduct
    from billing.services.plans import GRANT_FREE, plan_attach

    sub = fake_stripe.add_subscription(customer=customer.stripe_id, product_id=product.product_id)
    plan_attach(customer=customer, product=product, actor=None, method=GRANT_FREE, reason="Imported")
    now = timezone.now()
    CustomerProduct.objects.filter(customer=customer, product=product).update(
        stripe_subscription_id=sub["id"],
        granted_free=False,
        current_period_start=now - timedelta(days=15),
        current_period_end=now + timedelta(days=15),
    )
    return sub


class DashboardClient(Client):
    """The test client as a browser on the dashboard: a form it posts carries the environment its page was
    shown for (`{% page_env %}`), here the session's, unless the test posts one (a page of `form_values`, or a
    page opened before a switch). Tests of a form without it use Django's plain `Client`."""

    def post(self, path, data=None, content_type=MULTIPART_CONTENT, *args, **kwargs):
        if content_type == MULTIPART_CONTENT and not str(path).startswith(("/v1/", "/webhooks/")):
            data = dict(data or {})
            data.setdefault("page_env", self.session.get("env", "sandbox"))
        return super().post(path, data, content_type, *args, **kwargs)


# What the Details form (name, email and fingerprint together) posts for the `customer` fixture, unchanged:
# a test overrides the field it edits, e.g. {**CONTACT, "name": "Acme Ltd"}.
CONTACT = {
    "name": "Acme Corp",
    "email": "ada@acme.test",
    "fingerprint": "",
    "expected_name": "Acme Corp",
    "expected_email": "ada@acme.test",
    "expected_fingerprint": "",
}
