"""Billing's answers to what the customers layer announces (customers/signals.py), connected in apps.py."""

from __future__ import annotations

from django.dispatch import receiver

from billing.models import Product
from billing.services.products import product_attach
from billing.stripe_io import customers as stripe_customers
from customers.signals import customer_created, customer_details_changed


@receiver(customer_created, dispatch_uid="billing.default_products")
def attach_default_products(sender, *, customer, actor, with_defaults: bool, **kwargs) -> None:
    """A new customer starts on the catalogue's default products (Autumn's free plan), in the same transaction."""
    if not with_defaults:
        return
    for product in Product.objects.defaults():
        product_attach(customer=customer, product=product, actor=actor)


@receiver(customer_details_changed, dispatch_uid="billing.push_details_to_stripe")
def push_details_to_stripe(sender, *, customer, audit_entry, fields: frozenset, **kwargs) -> None:
    """Stripe knows a customer's name and email: send them once the change commits."""
    if {"name", "email"} & fields:
        stripe_customers.customer_details_changed(customer=customer, audit_entry=audit_entry)
