"""customer_delete_everywhere: Stripe first, then the customer here; what a Stripe refusal leaves."""

from __future__ import annotations

import pytest

from billing.stripe_io.client import StripeError
from billing.stripe_io.customers import customer_delete_everywhere
from customers.models import AuditEntry


def test_deleting_everywhere_deletes_in_stripe_before_deleting_here(linked, ops, fake_stripe):
    stripe_id = linked.stripe_id
    deletion = customer_delete_everywhere(
        customer=linked, actor=ops, reason="Closed", delete_in_stripe=True, all_or_nothing=False
    )
    assert (deletion.in_stripe, deletion.stripe_refusal) == (True, None)
    assert fake_stripe.customers[stripe_id]["deleted"] is True
    linked.refresh_from_db()
    assert linked.deleted_at is not None and linked.stripe_id == ""
    actions = list(AuditEntry.objects.filter(customer=linked).order_by("id").values_list("action", "reason"))
    assert actions[-2:] == [("customer.stripe_unlink", "Deleted in Stripe"), ("customer.delete", "Closed")]


def test_a_stripe_refusal_deletes_here_only_when_not_all_or_nothing_and_is_kept_on_the_customer(
    linked, ops, fake_stripe
):
    fake_stripe.queue_error(500, times=3)
    deletion = customer_delete_everywhere(
        customer=linked, actor=ops, reason="", delete_in_stripe=True, all_or_nothing=False
    )
    assert deletion.in_stripe is False and "Stripe had an error (HTTP 500)" in deletion.stripe_refusal.message
    linked.refresh_from_db()
    assert linked.deleted_at is not None and linked.stripe_id.startswith("cus_")
    assert linked.stripe_sync_error.startswith("Not deleted in Stripe:")


def test_a_stripe_refusal_all_or_nothing_deletes_nothing_here(linked, ops, fake_stripe):
    fake_stripe.queue_error(500, times=3)
    with pytest.raises(StripeError):
        customer_delete_everywhere(customer=linked, actor=ops, reason="", delete_in_stripe=True, all_or_nothing=True)
    linked.refresh_from_db()
    assert linked.deleted_at is None and linked.stripe_id.startswith("cus_")
    assert not AuditEntry.objects.filter(customer=linked, action="customer.delete").exists()
