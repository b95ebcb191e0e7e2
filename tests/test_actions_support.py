"""The support tools through the test client: Record Usage and Check Balance from a balance row's menu, the
customer object as customers.get answers it, and Create Customer on the list — who may, what is stored and
audited, what is refused, and that each stays in the dashboard's environment."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from billing.models import Balance, CustomerProduct, Event
from customers.models import AuditEntry, Customer
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from tests.api.conftest import ApiClient
from tests.helpers import DashboardClient as Client
from tests.helpers import page_text

PAGE = "/customers/acme_corp/"
RECORD = "/customers/acme_corp/features/messages/record-usage/"
CHECK = "/customers/acme_corp/features/messages/check/"
OBJECT = "/customers/acme_corp/object/"
CREATE = "/new-customer/"


def _as(role_user) -> Client:
    client = Client()
    client.force_login(role_user)
    return client


def _messages(customer) -> Balance:
    return Balance.objects.get(customer=customer, feature__feature_id="messages")


def _textarea(html: str, element_id: str) -> str:
    match = re.search(rf'<textarea id="{element_id}"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, html[:2000]
    return unescape(match.group(1))


def _api(ops, env: str = "sandbox") -> ApiClient:
    return ApiClient(Client(), api_key_create(env=env, name=f"Backend ({env})", actor=ops)[1])


# --- the balance row's menu ---------------------------------------------------------------------


def test_support_sees_record_usage_and_check_balance_in_a_balance_rows_menu(support, customer):
    html = page_text(_as(support).get(PAGE))

    row = html[html.index('id="balance-row-messages"') :]
    row = row[: row.index("</tbody>")]
    assert f'href="{RECORD}"' in row and ">Record usage<" in row
    assert f'href="{CHECK}"' in row and ">Check balance<" in row


def test_a_viewer_sees_no_balance_row_menu(viewer, customer):
    html = page_text(_as(viewer).get(PAGE))

    assert "/record-usage/" not in html and "/features/messages/check/" not in html


# --- Record Usage -------------------------------------------------------------------------------


def test_support_records_usage_through_the_engine_and_it_is_audited(support, customer):
    client = _as(support)
    shown = client.get(RECORD, HTTP_HX_REQUEST="true")
    assert shown.status_code == 200 and "Record Usage" in page_text(shown)

    response = client.post(
        RECORD,
        {"value": "7", "properties": '{"source": "support", "ticket": 42}', "reason": "Usage lost in an outage"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    html = page_text(response)
    assert 'id="balance-row-messages"' in html and "Recorded 7 Messages usage for Acme Corp." in html
    assert _messages(customer).remaining == 93
    event = Event.objects.get(customer=customer)
    assert event.value == 7 and event.properties == {"source": "support", "ticket": 42}
    entry = AuditEntry.objects.get(action="usage.record")
    assert entry.actor_user == support and entry.reason == "Usage lost in an outage"
    assert entry.after["value"] == 7 and entry.after["remaining"] == 93 and entry.target_id == str(event.pk)
    page = page_text(client.get(PAGE))
    assert "recorded 7 Messages usage, 93 left" in page


def test_recording_usage_draws_the_balance_as_an_api_track_does(support, ops, customer, other_customer):
    _as(support).post(RECORD, {"value": "12", "reason": "Backfill"})
    _api(ops).post("balances.track", {"customer_id": "globex", "feature_id": "messages", "value": 12})

    assert _messages(customer).remaining == _messages(other_customer).remaining == 88
    assert _messages(customer).usage == _messages(other_customer).usage == 12


def test_record_usage_without_javascript_returns_to_the_customer_page(support, customer):
    response = _as(support).post(RECORD, {"value": "1", "reason": "Backfill"})

    assert response.status_code == 302 and response.url == PAGE
    assert _messages(customer).remaining == 99


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"value": "many", "reason": "x"}, "value", "The value"),
        ({"value": "", "reason": "x"}, "value", "required"),
        ({"value": "3", "reason": "  "}, "reason", "A reason is required."),
        ({"value": "3", "reason": "x", "properties": "{source: support"}, "properties", "Properties must be JSON"),
        ({"value": "3", "reason": "x", "properties": "[1, 2]"}, "properties", "must be a JSON object"),
    ],
)
def test_record_usage_refuses_bad_input_and_changes_nothing(support, customer, data, field, message):
    response = _as(support).post(RECORD, data, HTTP_HX_REQUEST="true")

    assert response.status_code == 422
    assert message in page_text(response)
    assert _messages(customer).remaining == 100
    assert not Event.objects.exists() and not AuditEntry.objects.filter(action="usage.record").exists()


def test_record_usage_is_not_offered_for_an_on_off_feature(support, customer):
    response = _as(support).get("/customers/acme_corp/features/sso/record-usage/")

    assert response.status_code == 404


@pytest.mark.parametrize("role", ["viewer"])
def test_a_viewer_can_neither_record_nor_check(request, customer, role):
    client = _as(request.getfixturevalue(role))

    assert client.post(RECORD, {"value": "1", "reason": "x"}).status_code == 403
    assert client.post(CHECK, {"required_balance": "1"}).status_code == 403
    assert (
        _messages(customer).remaining == 100
        and not AuditEntry.objects.filter(action__in=["usage.record", "balance.check_run"]).exists()
    )


# --- Check Balance ------------------------------------------------------------------------------


def test_check_balance_shows_the_answer_exactly_as_the_api_gives_it_and_is_audited(support, ops, customer):
    _as(support).post(RECORD, {"value": "95", "reason": "Backfill"})

    response = _as(support).post(CHECK, {"required_balance": "10"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = page_text(response)
    assert "Not allowed" in html
    shown = json.loads(_textarea(html, "check-answer-json"))
    api = _api(ops).post(
        "balances.check", {"customer_id": "acme_corp", "feature_id": "messages", "required_balance": 10}
    )
    assert shown == api.json()
    assert shown["allowed"] is False and shown["balance"]["remaining"] == 5
    entry = AuditEntry.objects.get(action="balance.check_run")
    assert entry.actor_user == support and entry.after == {
        "feature": "messages",
        "required_balance": 10,
        "allowed": False,
    }
    assert _messages(customer).remaining == 5  # a check changes nothing


def test_check_balance_asks_for_one_unless_told(support, customer):
    client = _as(support)
    assert 'value="1"' in page_text(client.get(CHECK))

    shown = json.loads(_textarea(page_text(client.post(CHECK, {"required_balance": "1"})), "check-answer-json"))

    assert shown["allowed"] is True and shown["required_balance"] == 1


def test_check_balance_refuses_a_required_balance_that_is_no_number(support, customer):
    response = _as(support).post(CHECK, {"required_balance": "lots"})

    assert response.status_code == 422
    assert "check-answer-json" not in page_text(response)
    assert not AuditEntry.objects.filter(action="balance.check_run").exists()


def test_check_balance_answers_for_an_on_off_feature_as_the_api_does(support, ops, customer, catalogue):
    response = _as(support).post("/customers/acme_corp/features/sso/check/", {"required_balance": "1"})

    shown = json.loads(_textarea(page_text(response), "check-answer-json"))
    assert shown == _api(ops).post("balances.check", {"customer_id": "acme_corp", "feature_id": "sso"}).json()


# --- the customer object ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "support", "ops"])
def test_every_role_sees_the_customer_object_as_customers_get_answers_it(request, ops, customer, role):
    client = _as(request.getfixturevalue(role))
    assert f'href="{OBJECT}"' in page_text(client.get(PAGE))

    response = client.get(OBJECT, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = page_text(response)
    assert html.lstrip().startswith("<dialog") and "<details" in html and 'data-copy="#customer-object-json"' in html
    shown = json.loads(_textarea(html, "customer-object-json"))
    expand = ["invoices", "rewards", "entities"]
    assert shown == _api(ops).post("customers.get", {"customer_id": "acme_corp", "expand": expand}).json()
    assert shown["id"] == "acme_corp" and shown["balances"]["messages"]["remaining"] == 100


def test_the_customer_object_opens_as_a_page_without_javascript(viewer, customer):
    response = _as(viewer).get(OBJECT)

    assert response.status_code == 200
    assert '"id": "acme_corp"' in unescape(page_text(response))


def test_the_customer_object_of_another_environment_is_not_found(viewer, catalogue):
    customer_create(env="live", customer_id="live_only", actor=None)

    assert _as(viewer).get("/customers/live_only/object/").status_code == 404


# --- Create Customer ----------------------------------------------------------------------------


def test_ops_creates_a_customer_on_the_default_plan_and_goes_to_its_page(ops, catalogue):
    client = _as(ops)
    assert f'href="{CREATE}"' in page_text(client.get("/customers/"))

    response = client.post(
        CREATE,
        {
            "id": "new_co",
            "name": "New Co",
            "email": "hi@new.test",
            "fingerprint": "fp_1",
            "key": ["plan", "", "source"],
            "value": ["trial", "", "support"],
        },
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200 and response["HX-Redirect"] == "/customers/new_co/"
    created = Customer.objects.get(customer_id="new_co")
    assert (created.env, created.name, created.email, created.fingerprint) == (
        "sandbox",
        "New Co",
        "hi@new.test",
        "fp_1",
    )
    assert created.metadata == {"plan": "trial", "source": "support"}
    assert list(CustomerProduct.objects.filter(customer=created).values_list("product__product_id", flat=True)) == [
        "free"
    ]
    entry = AuditEntry.objects.get(action="customer.create", customer=created)
    assert entry.actor_user == ops


def test_a_customer_is_created_in_the_dashboards_current_environment(ops, catalogue):
    client = _as(ops)
    client.post("/env/", {"env": "live", "next": "/customers/"})

    response = client.post(CREATE, {"id": "live_co"})

    assert response.status_code == 302
    assert Customer.objects.get(customer_id="live_co").env == "live"


def test_a_taken_id_is_a_form_error_and_changes_nothing(ops, customer):
    before = (Customer.objects.count(), AuditEntry.objects.count())

    response = _as(ops).post(CREATE, {"id": "acme_corp", "name": "Imposter"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 422
    assert "acme_corp" in page_text(response) and "Create Customer" in page_text(response)
    assert (Customer.objects.count(), AuditEntry.objects.count()) == before
    customer.refresh_from_db()
    assert customer.name == "Acme Corp"


def test_an_id_taken_in_the_other_environment_is_free_here(ops, catalogue):
    customer_create(env="live", customer_id="twin", actor=None)

    response = _as(ops).post(CREATE, {"id": "twin"})

    assert response.status_code == 302
    assert sorted(Customer.objects.filter(customer_id="twin").values_list("env", flat=True)) == ["live", "sandbox"]


def test_create_customer_needs_an_id(ops, catalogue):
    response = _as(ops).post(CREATE, {"id": " ", "name": "Nameless"})

    assert response.status_code == 422 and "A customer id is required." in page_text(response)
    assert not Customer.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "support"])
def test_only_ops_may_create_customers(request, catalogue, role):
    client = _as(request.getfixturevalue(role))

    assert "/new-customer/" not in page_text(client.get("/customers/"))
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, {"id": "sneaky"}).status_code == 403
    assert not Customer.objects.filter(customer_id="sneaky").exists()
