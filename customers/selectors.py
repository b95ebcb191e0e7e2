"""Reads of customers, scoped to an environment."""

from django.http import Http404

from customers.models import Customer


def get_customer_for(env: str, customer_id: str) -> Customer:
    """The live customer with this id in this environment, or a 404 (deleted and other-env ones too)."""
    customer = Customer.objects.alive().filter(env=env, customer_id=customer_id).first()
    if customer is None:
        raise Http404(f"No customer {customer_id!r} in {env}.")
    return customer
