from django import template

from billing.stripe_gateway import dashboard_url

register = template.Library()


@register.filter
def stripe_customer_url(stripe_id: str) -> str:
    """`{{ customer.stripe_id|stripe_customer_url }}`: the customer's page in the Stripe dashboard."""
    return dashboard_url(stripe_id)
