from decimal import Decimal

from billing.models import Balance
from billing.services import balance_set, balance_track, product_attach


def test_customer_on_free_plan_tracks_and_edits(customer, catalogue, ops):
    balance = Balance.objects.get(customer=customer, feature=catalogue["messages"])
    assert balance.remaining == 100
    balance_track(customer=customer, feature=catalogue["messages"], value=30, actor=None)
    balance = balance_set(balance=balance, new_balance=500, actor=ops, reason="goodwill")
    assert (balance.granted, balance.usage, balance.remaining) == (Decimal(530), Decimal(30), Decimal(500))
    cp = product_attach(customer=customer, product=catalogue["pro"], actor=ops)
    new = Balance.objects.get(customer_product=cp, feature=catalogue["messages"])
    assert new.remaining == 5000 - 30
