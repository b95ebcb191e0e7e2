"""keys.mint/refresh/revoke: a secret key mints a customer's token pair (Autumn's customer tokens), the access
token reaches only that customer's check, track, customers.get and events, the refresh token only rotates the
pair, and revoking ends them all. Tokens are API keys of the customer's environment, audited."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from autumn_sdk import Autumn
from autumn_sdk.errors import AutumnDefaultError
from autumn_sdk.models.mintkeyop import MintKeyResponse
from autumn_sdk.models.refreshkeyop import RefreshKeyResponse
from django.utils import timezone

from billing.models import Balance
from customers.models import ApiKey, AuditEntry
from tests.api.conftest import ApiClient

HOUR_MS = 3600 * 1000


def _mint(api, customer_id="acme_corp", **extra) -> dict:
    response = api.post("keys.mint", {"customer_id": customer_id, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def _tokens():
    return ApiKey.objects.exclude(kind="secret")


def test_keys_mint_answers_an_access_and_refresh_token_with_autumns_lifetimes(api, customer):
    before = time.time() * 1000
    pair = _mint(api)

    assert set(pair) == {"access_token", "expires_at", "refresh_token", "refresh_expires_at"}
    assert pair["access_token"].startswith("am_jwt_") and pair["refresh_token"].startswith("am_jwt_")
    assert before + HOUR_MS - 5000 <= pair["expires_at"] <= time.time() * 1000 + HOUR_MS
    assert before + 24 * HOUR_MS - 5000 <= pair["refresh_expires_at"] <= time.time() * 1000 + 24 * HOUR_MS
    assert {(t.kind, t.env, t.customer.customer_id) for t in _tokens()} == {
        ("access", "sandbox", "acme_corp"),
        ("refresh", "sandbox", "acme_corp"),
    }
    entry = AuditEntry.objects.get(action="customer_token.mint")
    assert (entry.actor_api_key, entry.customer, entry.env) == (ApiKey.objects.get(kind="secret"), customer, "sandbox")


def test_an_indefinite_token_has_no_end_and_no_refresh_token(api, customer):
    pair = _mint(api, indefinite=True)

    assert set(pair) == {"access_token", "expires_at"} and pair["expires_at"] is None
    assert [t.kind for t in _tokens()] == ["access"]


def test_an_access_token_acts_on_its_own_customer_whatever_the_body_names(client, api, customer, other_customer):
    token = ApiClient(client, _mint(api)["access_token"])

    got = token.post("customers.get", {"customer_id": "globex"})
    assert (got.status_code, got.json()["id"]) == (200, "acme_corp")

    tracked = token.post("balances.track", {"customer_id": "globex", "feature_id": "messages", "value": 3})
    assert tracked.status_code == 200, tracked.content
    assert Balance.objects.get(customer=customer, feature__feature_id="messages").usage == 3
    assert Balance.objects.get(customer=other_customer, feature__feature_id="messages").usage == 0

    checked = token.post("balances.check", {"feature_id": "messages"})
    assert (checked.status_code, checked.json()["customer_id"]) == (200, "acme_corp")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("customers.list", {}),
        ("customers.delete", {"customer_id": "acme_corp"}),
        ("customers.update", {"customer_id": "acme_corp", "name": "Taken over"}),
        ("keys.mint", {"customer_id": "acme_corp"}),
        ("keys.revoke", {"customer_id": "acme_corp"}),
        ("keys.refresh", {}),
        ("billing.attach", {"customer_id": "acme_corp", "plan_id": "pro"}),
    ],
)
def test_an_access_token_is_refused_everywhere_else_and_changes_nothing(client, api, customer, path, body):
    token = ApiClient(client, _mint(api)["access_token"])
    tokens_before = _tokens().count()

    response = token.post(path, body)

    assert response.status_code == 403
    assert response.json() == {
        "message": f"Endpoint POST /v1/{path} is not accessible with this customer token",
        "code": "invalid_request",
        "env": "sandbox",
    }
    customer.refresh_from_db()
    assert (customer.name, customer.deleted_at, _tokens().count()) == ("Acme Corp", None, tokens_before)
    assert customer.customer_products.filter(product__product_id="pro").count() == 0


def test_keys_refresh_rotates_the_pair_and_the_old_refresh_token_stops_working(client, api, customer):
    first = _mint(api)
    refresher = ApiClient(client, first["refresh_token"])

    rotated = refresher.post("keys.refresh")
    assert rotated.status_code == 200, rotated.content
    second = rotated.json()
    assert second["access_token"] not in (first["access_token"],) and second["refresh_token"] != first["refresh_token"]
    assert ApiClient(client, second["access_token"]).post("customers.get", {}).json()["id"] == "acme_corp"

    again = refresher.post("keys.refresh")
    assert again.status_code == 401
    assert again.json()["message"] == "Invalid or expired customer token"
    assert AuditEntry.objects.filter(action="customer_token.refresh", customer=customer).count() == 1
    # A refresh token reaches nothing but keys.refresh.
    assert ApiClient(client, second["refresh_token"]).post("customers.get", {}).status_code == 403


def test_keys_refresh_with_a_secret_key_is_refused(api, customer):
    response = api.post("keys.refresh")

    assert response.status_code == 401
    assert "refresh token" in response.json()["message"]
    assert not _tokens().exists()


def test_keys_revoke_ends_every_token_of_the_customer_only(client, api, customer, other_customer):
    first, second = _mint(api), _mint(api, indefinite=True)
    globex = _mint(api, "globex")

    response = api.post("keys.revoke", {"customer_id": "acme_corp"})

    assert (response.status_code, response.json()) == (200, {"revoked": True})
    for raw in (first["access_token"], second["access_token"]):
        refused = ApiClient(client, raw).post("customers.get", {})
        assert refused.status_code == 401
    assert ApiClient(client, first["refresh_token"]).post("keys.refresh").status_code == 401
    assert ApiClient(client, globex["access_token"]).post("customers.get", {}).json()["id"] == "globex"
    entry = AuditEntry.objects.get(action="customer_token.revoke")
    assert (entry.customer, len(entry.before["outstanding"])) == (customer, 3)


def test_an_expired_access_token_answers_401(client, api, customer):
    pair = _mint(api)
    _tokens().filter(kind="access").update(expires_at=timezone.now() - timedelta(seconds=1))

    response = ApiClient(client, pair["access_token"]).post("customers.get", {})

    assert response.status_code == 401


def test_a_deleted_customers_tokens_stop_working(client, api, customer):
    pair = _mint(api)
    assert api.post("customers.delete", {"customer_id": "acme_corp"}).status_code == 200

    assert ApiClient(client, pair["access_token"]).post("customers.get", {}).status_code in (401, 404)


def test_a_key_mints_and_revokes_only_its_own_environments_customers(client, api, live_api, customer, globex):
    pair = _mint(api)  # sandbox acme
    tokens_before = _tokens().count()

    minted = live_api.post("keys.mint", {"customer_id": "acme_corp"})
    revoked = live_api.post("keys.revoke", {"customer_id": "acme_corp"})

    for response in (minted, revoked):
        assert response.status_code == 404
        assert response.json() == {
            "message": "Customer acme_corp not found",
            "code": "customer_not_found",
            "env": "live",
        }
    assert _tokens().count() == tokens_before
    assert ApiClient(client, pair["access_token"]).post("customers.get", {}).status_code == 200
    # A live customer's token reads the live customer, never sandbox's namesake.
    live = ApiClient(client, _mint(live_api, "globex")["access_token"]).post("customers.get", {})
    assert (live.json()["id"], live.json()["env"]) == ("globex", "live")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("keys.mint", {}, 422),
        ("keys.mint", {"customer_id": ""}, 422),
        ("keys.mint", {"customer_id": "acme_corp", "indefinite": "yes"}, 422),
        ("keys.mint", {"customer_id": "acme_corp", "indefinite": None}, 422),
        ("keys.mint", {"customer_id": "nobody"}, 404),
        ("keys.revoke", {}, 422),
        ("keys.revoke", {"customer_id": "nobody"}, 404),
    ],
)
def test_keys_refuse_bad_input_with_autumns_error_body_and_change_nothing(api, customer, path, body, status):
    entries = AuditEntry.objects.count()

    response = api.post(path, body)

    assert response.status_code == status
    assert set(response.json()) == {"message", "code", "env"}
    assert (_tokens().count(), AuditEntry.objects.count()) == (0, entries)


def test_a_forged_or_malformed_customer_token_answers_401(client, customer):
    for raw in ("am_jwt_" + "A" * 40, "am_jwt_short"):
        response = ApiClient(client, raw).post("customers.get", {"customer_id": "acme_corp"})
        assert response.status_code == 401


def test_the_api_keys_page_lists_secret_keys_not_customer_tokens(client, ops_client, api, customer):
    _mint(api)

    page = ops_client.get("/api-keys/")

    assert page.status_code == 200
    assert b"acme_corp" not in page.content
    assert page.context["keys"].count() == 1


@pytest.mark.django_db(transaction=True)
def test_python_client_mints_refreshes_and_revokes_customer_tokens(live_server, sandbox_key, customer):
    _, raw = sandbox_key
    with Autumn(secret_key=raw, server_url=live_server.url, fail_open=False) as autumn:
        minted = autumn.keys.mint(customer_id="acme_corp")
        assert isinstance(minted, MintKeyResponse)
        assert minted.access_token.startswith("am_jwt_") and minted.expires_at > time.time() * 1000

        with Autumn(secret_key=minted.access_token, server_url=live_server.url, fail_open=False) as as_customer:
            assert as_customer.customers.get(customer_id="someone_else").id == "acme_corp"

        with Autumn(secret_key=minted.refresh_token, server_url=live_server.url, fail_open=False) as refresher:
            rotated = refresher.keys.refresh(request={})
        assert isinstance(rotated, RefreshKeyResponse)
        assert rotated.refresh_token not in (None, minted.refresh_token)

        indefinite = autumn.keys.mint(customer_id="acme_corp", indefinite=True)
        assert (indefinite.expires_at, indefinite.refresh_token) == (None, None)

        assert autumn.keys.revoke(customer_id="acme_corp").revoked is True
        with Autumn(secret_key=rotated.access_token, server_url=live_server.url, fail_open=False) as revoked:
            with pytest.raises(AutumnDefaultError) as refused:
                revoked.customers.get(customer_id="acme_corp")
        assert refused.value.status_code == 401


def test_an_access_token_lists_only_its_own_customers_events(client, api, customer, other_customer):
    for who in ("acme_corp", "globex"):
        assert api.post("balances.track", {"customer_id": who, "feature_id": "messages", "value": 1}).status_code == 200
    token = ApiClient(client, _mint(api)["access_token"])

    listed = token.post("events.list", {})  # no customer_id: the whole environment for a secret key

    assert listed.status_code == 200, listed.content
    assert {e["customer_id"] for e in listed.json()["list"]} == {"acme_corp"}
    legacy = token.post("track", {"customer_id": "globex", "feature_id": "messages", "value": 2})
    assert legacy.status_code == 200, legacy.content
    assert Balance.objects.get(customer=customer, feature__feature_id="messages").usage == 3
    assert Balance.objects.get(customer=other_customer, feature__feature_id="messages").usage == 1
