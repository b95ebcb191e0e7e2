"""The customers list's Product and Plan status filters read together (that product in that status), checked
against what each customer's own page shows, pair by pair, in both environments, for the list, its count, the
CSV export, a saved view and a bulk job on all matching."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from autumn_admin.dashboard.customer_list import STATUS_FILTERS, product_choices
from billing.models import Balance, BulkJob, CustomerProduct
from billing.services.plans import GRANT_FREE, plan_attach
from customers.models import SavedView
from customers.services.customers import customer_create
from tests.html import element, page_of, text

LIST = "/customers/"
EXPORT = "/exports/customers.csv"
STATUSES = ["active", "trialing", "past_due", "cancelling", "scheduled"]
# How the customer's page names each status the list offers (CustomerProduct.status_label).
PAGE_LABELS = {
    "active": "Active",
    "trialing": "Trial",
    "past_due": "Past Due",
    "cancelling": "Cancelling",
    "scheduled": "Scheduled",
}
LIVE_LABELS = {"Active", "Trial", "Past Due", "Cancelling"}


def _set_status(cp: CustomerProduct, status: str) -> None:
    """Put a product just attached into `status` as the app would have it: a trial that has not ended, a
    cancellation at the period's end, a product scheduled to start next month (no balances yet)."""
    now = timezone.now()
    fields = {"status": status, "canceled_at": None, "trial_ends_at": None}
    if status == "cancelling":
        fields |= {"status": "active", "canceled_at": now}
    elif status == "trialing":
        fields["trial_ends_at"] = now + timedelta(days=14)
    elif status == "scheduled":
        fields["started_at"] = now + timedelta(days=30)
        Balance.all_objects.filter(customer_product=cp).delete()
    CustomerProduct.objects.filter(pk=cp.pk).update(**fields)


@pytest.fixture
def every_pair(catalogue):
    """In each environment, for every product in every status, a customer holding it in that status beside a
    companion (the seats add-on; Scale beside the add-on) in another status, the companion's status turning
    with the product's so each status meets the others; and one customer with no product."""
    made = []
    for env in ("sandbox", "live"):
        for product_id in ("free", "pro", "scale", "seats_addon"):
            companion = "scale" if product_id == "seats_addon" else "seats_addon"
            for i, status in enumerate(STATUSES):
                c = customer_create(
                    env=env, customer_id=f"{env[0]}_{product_id}_{status}", actor=None, attach_defaults=False
                )
                turn = {"free": 1, "pro": 2, "scale": 3, "seats_addon": 4}[product_id]  # never the same status
                wanted = ((product_id, status), (companion, STATUSES[(i + turn) % len(STATUSES)]))
                attached = [
                    plan_attach(
                        customer=c,
                        product=catalogue[pid],
                        actor=None,
                        method=None if pid == "free" else GRANT_FREE,
                        reason="fixture",
                    ).customer_product
                    for pid, _ in wanted
                ]
                for cp, (_, s) in zip(attached, wanted, strict=True):
                    _set_status(cp, s)
                made.append(c)
        made.append(customer_create(env=env, customer_id=f"{env[0]}_nothing", actor=None, attach_defaults=False))
    return made


def ids(response) -> list[str]:
    return re.findall(r'<td class="mono">([^<]+)</td>', page_of(response))


def _page_products(client, customer_id: str) -> set[tuple[str, str]]:
    """(product id, status as shown) of every product row on the customer's page."""
    page = page_of(client.get(f"/customers/{customer_id}/"))
    rows = re.findall(r'<tbody class="product-row">(.*?)</tbody>', page, flags=re.S)
    shown = set()
    for row in rows:
        product_id = re.search(r'<td class="mono">([^<]+)</td>', row).group(1)
        label = re.search(r'<span class="badge [^"]*">([^<]+)</span>', row).group(1)
        shown.add((product_id, label))
    return shown


def _expected(pages: dict[str, set], product: str, status: str) -> list[str]:
    def picks(shown: set[tuple[str, str]]) -> bool:
        if not product and not status:
            return True  # no filter: everyone
        if status == "none":
            return not any(label in LIVE_LABELS for _, label in shown)
        labels = {PAGE_LABELS[status]} if status else LIVE_LABELS
        return any((not product or pid == product) and label in labels for pid, label in shown)

    return sorted(cid for cid, shown in pages.items() if picks(shown))


def _switch(client, env: str) -> None:
    client.post("/env/", {"env": env, "next": LIST})


def _export_ids(client, params) -> list[str]:
    response = client.get(EXPORT, params)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return sorted(row[0] for row in list(csv.reader(io.StringIO(body)))[1:])


@pytest.mark.parametrize("cap", [2_000, 0], ids=["narrowed first", "too many to narrow"])
@pytest.mark.parametrize("env", ["sandbox", "live"])
def test_product_and_plan_status_together_pick_that_product_in_that_status_as_each_customers_page_shows(
    client, ops, every_pair, discount_rewards, monkeypatch, env, cap
):
    from autumn_admin.dashboard import customer_list

    monkeypatch.setattr(customer_list, "NARROW_CAP", cap)
    client.force_login(ops)
    _switch(client, env)
    pages = {c.customer_id: _page_products(client, c.customer_id) for c in every_pair if c.env == env}
    assert len(pages) == 21
    products = ["", *(pid for pid, _ in product_choices())]
    assert set(products) == {"", "free", "pro", "scale", "seats_addon"}
    for product in products:
        for status in ["", *STATUS_FILTERS]:
            params = {k: v for k, v in (("product", product), ("status", status)) if v}
            response = client.get(LIST, params)
            if product and status == "none":
                # No product holds no product to look for: said, not guessed at.
                assert response.status_code == 400
                assert "“No product” can't be combined with a product" in text(
                    element(page_of(response), "filter-errors")
                )
                continue
            expected = _expected(pages, product, status)
            assert response.status_code == 200
            assert sorted(ids(response)) == expected, (env, params)
            if product and status:
                # Each row shows the product it is listed for, in that status.
                names = dict(product_choices())
                row = r'<td class="mono">([^<]+)</td>.*?<div class="products">(.*?)</div>'
                rows = re.findall(row, page_of(response), flags=re.S)
                for cid, cell in rows:
                    assert f"{names[product]} {STATUS_FILTERS[status][0]}" in text(cell), (cid, params, text(cell))
            count = text(element(page_of(response), "result-count"))
            assert count.startswith(f"{len(expected)} customer") or (not expected and "No customers" in count), count
            assert _export_ids(client, params) == expected, (env, params)
            preview = client.post(
                "/bulk/",
                {
                    **params,
                    "scope": "all",
                    "action": "add_coupon",
                    "act_reward": "twenty_off",
                    "reason": "check",
                    "preview": "1",
                },
            )
            if expected:
                assert f"of {len(expected)} selected" in text(element(page_of(preview), "bulk-preview")), params


def test_scale_active_leaves_out_a_past_due_scale_beside_an_active_add_on_and_says_so(
    client, ops, catalogue, discount_rewards
):
    # The report's case: Scale past due, its seats add-on active, and the other way round.
    for cid, scale, addon in (("scale_past_due", "past_due", "active"), ("scale_active", "active", "past_due")):
        c = customer_create(env="sandbox", customer_id=cid, actor=None, attach_defaults=False)
        for product, status in (("scale", scale), ("seats_addon", addon)):
            got = plan_attach(customer=c, product=catalogue[product], actor=None, method=GRANT_FREE, reason="x")
            _set_status(got.customer_product, status)
    client.force_login(ops)
    assert ids(client.get(LIST, {"product": "scale", "status": "active"})) == ["scale_active"]
    assert ids(client.get(LIST, {"product": "seats_addon", "status": "past_due"})) == ["scale_active"]
    assert ids(client.get(LIST, {"product": "scale", "status": "past_due"})) == ["scale_past_due"]
    # A bulk job on all matching takes the same customers, and its selection says what it means.
    response = client.post(
        "/bulk/",
        {
            "product": "scale",
            "status": "active",
            "scope": "all",
            "action": "add_coupon",
            "act_reward": "twenty_off",
            "reason": "x",
            "run": "1",
        },
    )
    assert response.status_code == 302
    job = BulkJob.objects.get()
    assert job.total == 1 and "product scale in status Active" in job.filter_text
    # A saved view of the two filters lists the same one customer.
    client.post("/saved-views/", {"name": "Scale active", "query": "product=scale&status=active"})
    view = SavedView.objects.get(name="Scale active")
    assert ids(client.get(f"{LIST}?{view.query}")) == ["scale_active"]
