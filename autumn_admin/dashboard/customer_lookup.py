"""The customer a dashboard URL names: alive, in the environment the dashboard shows, or a 404."""

from __future__ import annotations

import re

from django.http import Http404

from customers.models import CUSTOMER_ID_PATTERN, Customer, Env

CUSTOMER_ID_RE = re.compile(CUSTOMER_ID_PATTERN)


def get_customer_for(env: str, customer_id: str) -> Customer:
    """The live customer with this id in this environment, or a 404 (deleted and other-env ones too)."""
    # An id no customer can have (a NUL, say, which PostgreSQL refuses to compare) is looked up nowhere.
    valid = CUSTOMER_ID_RE.fullmatch(customer_id) is not None
    customer = Customer.objects.alive().filter(env=env, customer_id=customer_id).first() if valid else None
    if customer is None:
        raise Http404(f"No customer with the id “{customer_id}” in {Env(env).label.lower()}.")
    return customer
