"""The customers list: search, filters, sort, pages, CSV export, and its query budget."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import CustomerProduct
from billing.services.products import product_attach
from customers.models import Customer
from customers.services.customers import customer_create, customer_delete
from tests.html import element, page_of, text

LIST = "/customers/"


@pytest.fixture
def people(catalogue, ops):
    """Five sandbox customers in different states, plus look-alikes that must never show."""
    now = timezone.now()
    made = {}
    specs = [
        ("acme_corp", "Acme Corp", "ada@acme.test", "fp_AAA111", 50),
        ("globex", "Globex", "hank@globex.test", "", 40),
        ("initech", "Initech", "peter@initech.test", "fp_bbb222", 30),
        ("umbrella", "Umbrella", "alice@umbrella.test", "", 20),
        ("zz_no_name", "", "", "", 10),
    ]
    for cid, name, email, fp, days in specs:
        c = customer_create(
            env="sandbox",
            customer_id=cid,
            actor=None,
            name=name,
            email=email,
            fingerprint=fp,
            attach_defaults=cid != "zz_no_name",
        )
        Customer.objects.filter(pk=c.pk).update(created_at=now - timedelta(days=days))
        made[cid] = c
    product_attach(customer=made["globex"], product=catalogue["pro"], actor=ops)
    product_attach(customer=made["initech"], product=catalogue["scale"], actor=ops, status="trialing")
    product_attach(customer=made["umbrella"], product=catalogue["pro"], actor=ops)
    CustomerProduct.objects.filter(customer=made["umbrella"], product__product_id="pro").update(status="past_due")
    # Never listed: another environment, and a deleted customer.
    customer_create(env="live", customer_id="acme_live", actor=None, name="Acme Corp (live)")
    gone = customer_create(env="sandbox", customer_id="acme_gone", actor=None, name="Acme Gone")
    customer_delete(customer=gone, actor=ops)
    return made


def ids(response) -> list[str]:
    return re.findall(r'<td class="mono">([^<]+)</td>', page_of(response))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ACME", ["acme_corp"]),  # name and id, any case
        ("hank@GLOBEX", ["globex"]),  # email
        ("fp_bbb", ["initech"]),  # fingerprint
        ("AAA111", ["acme_corp"]),  # fingerprint, any case
        ("corp", ["acme_corp"]),
        ("nobody", []),
    ],
)
def test_search_matches_id_name_email_or_fingerprint(client, viewer, people, q, expected):
    client.force_login(viewer)
    assert ids(client.get(LIST, {"q": q})) == expected


def test_the_list_shows_each_customers_products_and_count(client, viewer, people):
    client.force_login(viewer)
    page = page_of(client.get(LIST))
    assert text(element(page, "result-count")) == "5 customers"
    assert ids(client.get(LIST)) == ["zz_no_name", "umbrella", "initech", "globex", "acme_corp"]
    rows = [text(r) for r in re.findall(r"<tr>\s*<td.*?</tr>", page, flags=re.S)]
    assert rows[0].startswith("zz_no_name zz_no_name — No product")
    assert rows[1].startswith("Umbrella umbrella alice@umbrella.test Pro Past due")
    assert rows[2].startswith("Initech initech peter@initech.test Scale Trialing")
    assert rows[4].startswith("Acme Corp acme_corp ada@acme.test Free Active")
    assert '<a href="/customers/acme_corp/">Acme Corp</a>' in page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"product": "pro"}, ["umbrella", "globex"]),
        ({"product": "free"}, ["acme_corp"]),
        ({"status": "active"}, ["globex", "acme_corp"]),
        ({"status": "trialing"}, ["initech"]),
        ({"status": "past_due"}, ["umbrella"]),
        ({"status": "none"}, ["zz_no_name"]),
        ({"status": "active", "product": "pro"}, ["globex"]),
        ({"status": "active", "q": "acme"}, ["acme_corp"]),
        ({"status": "made_up"}, []),  # refused with a message (test_bad_filter_values_say_what_is_wrong)
    ],
)
def test_filters_by_product_and_status(client, viewer, people, params, expected):
    client.force_login(viewer)
    assert ids(client.get(LIST, params)) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-created", ["zz_no_name", "umbrella", "initech", "globex", "acme_corp"]),
        ("created", ["acme_corp", "globex", "initech", "umbrella", "zz_no_name"]),
        ("name", ["zz_no_name", "acme_corp", "globex", "initech", "umbrella"]),
        ("-name", ["umbrella", "initech", "globex", "acme_corp", "zz_no_name"]),
    ],
)
def test_sort_by_created_or_name(client, viewer, people, sort, expected):
    client.force_login(viewer)
    assert ids(client.get(LIST, {"sort": sort})) == expected


def test_no_match_says_so_and_offers_to_clear(client, viewer, people):
    client.force_login(viewer)
    page = page_of(client.get(LIST, {"q": "nobody"}))
    assert "No customer matches these filters." in text(page)
    assert text(element(page, "result-count")) == "0 customers match these filters"


def test_an_empty_environment_says_where_customers_come_from(client, viewer, db):
    client.force_login(viewer)
    assert "No customers in sandbox yet." in text(page_of(client.get(LIST)))


@pytest.fixture
def many(db):
    now = timezone.now()
    Customer.objects.bulk_create(
        [
            Customer(
                env="sandbox",
                customer_id=f"cus_{i:03d}",
                name=f"Customer {i:03d}",
                email=f"c{i}@example.test",
                created_at=now - timedelta(minutes=i),
            )
            for i in range(120)
        ]
    )


def test_pages_of_fifty_keep_the_filters(client, viewer, many):
    client.force_login(viewer)
    first = page_of(client.get(LIST, {"q": "customer", "sort": "name"}))
    assert "Showing 1–50 of 120" in text(first)
    assert 'href="?q=customer&amp;sort=name&amp;page=2" rel="next"' in first
    third = client.get(LIST, {"q": "customer", "sort": "name", "page": 3})
    assert ids(third) == [f"cus_{i:03d}" for i in range(100, 120)]
    assert "Showing 101–120 of 120" in text(page_of(third))
    assert ids(client.get(LIST, {"page": "9999"})) == [f"cus_{i:03d}" for i in range(100, 120)]
    assert ids(client.get(LIST, {"page": "x"}))[0] == "cus_000"


def test_the_list_runs_eight_queries(client, ops, many, catalogue, django_assert_num_queries):
    for c in Customer.objects.all()[:50]:
        product_attach(customer=c, product=catalogue["pro"], actor=None)
    client.force_login(ops)
    # Session, the user with their role and permissions, the capped count, the page of customers, their
    # products, product and feature filter options, the person's saved views. The count has a time limit and
    # the page is read without parallel workers, each set in a savepoint that is then rolled back and
    # released: eight more (a request outside a test's transaction has only the two settings).
    with django_assert_num_queries(8 + 8):
        response = client.get(LIST, {"status": "active", "product": "pro", "q": "cus", "sort": "name"})
    assert len(ids(response)) == 50


def _csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_csv_export_streams_the_filtered_list(client, viewer, people):
    client.force_login(viewer)
    response = client.get(reverse("customers:export"), {"status": "active"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.match(r'attachment; filename="customers-sandbox-\d{8}-\d{4}\.csv"', response["Content-Disposition"])
    rows = _csv(response)
    assert rows[0] == [
        "id",
        "name",
        "email",
        "fingerprint",
        "products",
        "status",
        "stripe_id",
        "created_at",
        "metadata",
    ]
    assert [r[:6] for r in rows[1:]] == [
        ["globex", "Globex", "hank@globex.test", "", "pro", "active"],
        ["acme_corp", "Acme Corp", "ada@acme.test", "fp_AAA111", "free", "active"],
    ]


def test_csv_export_reads_in_chunks_and_keeps_formulas_out(client, viewer, db):
    Customer.objects.bulk_create(
        [
            Customer(
                env="sandbox",
                customer_id=f"cus_{i:04d}",
                name='=HYPERLINK("http://x")' if i == 0 else f"C{i}",
                metadata={"tier": "gold"} if i == 1 else {},
            )
            for i in range(4500)
        ]
    )
    client.force_login(viewer)
    with CaptureQueriesContext(connection) as before_streaming:
        response = client.get(reverse("customers:export"), {"sort": "created"})
    assert not [q for q in before_streaming.captured_queries if "customers_customer" in q["sql"]]
    with CaptureQueriesContext(connection) as streaming:
        rows = _csv(response)
    # One cursor read in chunks of 2,000, each chunk with one query for its products: the export never
    # holds the whole table.
    sqls = [q["sql"] for q in streaming.captured_queries]
    assert len([s for s in sqls if 'FROM "customers_customer"' in s]) == 1
    assert len([s for s in sqls if 'FROM "billing_customerproduct"' in s]) == 3
    assert len(rows) == 4501
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["cus_0000"][1] == '\'=HYPERLINK("http://x")'
    assert by_id["cus_0001"][8] == '{"tier": "gold"}'
    assert by_id["cus_0002"][5] == "none"


def test_the_search_box_is_in_the_top_bar_with_its_shortcut(client, viewer, people):
    client.force_login(viewer)
    page = page_of(client.get(LIST, {"q": "acme"}))
    assert re.search(r'<input id="global-search" type="search" name="q" value="acme"[^>]*data-hotkey="/"', page)
    assert '<label for="global-search" class="visually-hidden">Search customers</label>' in page


def test_search_has_trigram_indexes_on_the_expression_it_filters_by(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers_customer' "
            "AND indexname LIKE '%%_trgm'"
        )
        indexes = dict(cursor.fetchall())
    assert set(indexes) == {f"customer_{c}_trgm" for c in ("customer_id", "name", "email", "fingerprint")}
    assert "gin (upper((name)::text) gin_trgm_ops)" in indexes["customer_name_trgm"]
    sql = str(Customer.objects.filter(name__icontains="x").query)
    assert 'UPPER("customers_customer"."name"::text) LIKE UPPER(' in sql


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_export_writes_every_cell_starting_like_a_formula_as_text(client, viewer, db, start):
    # OWASP's CSV injection starts: an id `-1-1` opens as −2 in a spreadsheet, `=…` runs. Ids, names, emails,
    # fingerprints, Stripe ids and products come from customers' own apps: each such cell gets a leading quote.
    Customer.objects.create(
        env="sandbox",
        customer_id="-1-1",  # ids take letters, digits, _ and -: only `-` can start one
        name=f"{start}2+3",
        email=f"{start}cmd@x.test",
        fingerprint=f"{start}fp",
        stripe_id=f"{start}cus",
    )
    client.force_login(viewer)
    rows = _csv(client.get(reverse("customers:export")))
    assert rows[1][:4] == ["'-1-1", f"'{start}2+3", f"'{start}cmd@x.test", f"'{start}fp"]
    assert rows[1][6] == f"'{start}cus"
