"""API keys: created by ops on /api-keys/ or with create_api_key, shown once, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.management import CommandError, call_command

from customers.models import ApiKey, AuditEntry
from customers.services.api_keys import api_key_create
from tests.api.conftest import ApiClient


def test_create_api_key_command_prints_a_working_key(client, catalogue, capsys):
    call_command("create_api_key", "--env", "live", "--name", "Production backend")
    raw = capsys.readouterr().out.strip()
    assert re.fullmatch(r"am_sk_live_[A-Za-z0-9_-]{40}", raw)
    api_key = ApiKey.objects.get()
    assert (api_key.name, api_key.env, api_key.created_by) == ("Production backend", "live", None)
    assert api_key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    response = ApiClient(client, raw).post("customers.get_or_create", {"customer_id": "from_cli"})
    assert (response.status_code, response.json()["env"]) == (200, "live")


def test_create_api_key_command_refuses_an_unknown_environment(db):
    with pytest.raises(CommandError):
        call_command("create_api_key", "--env", "staging", "--name", "x")
    assert not ApiKey.objects.exists()


def test_ops_create_a_key_on_the_dashboard_and_see_it_once(ops_client, ops):
    page = ops_client.get("/api-keys/")
    assert page.status_code == 200
    assert b"Create a key" in page.content
    created = ops_client.post("/api-keys/", {"name": "Billing worker", "env": "sandbox"})
    assert created.status_code == 201
    assert "no-store" in created["Cache-Control"]
    [raw] = re.findall(r"am_sk_test_[A-Za-z0-9_-]{40}", created.content.decode())  # shown once
    api_key = ApiKey.objects.get()
    assert (api_key.name, api_key.env, api_key.created_by) == ("Billing worker", "sandbox", ops)
    assert api_key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert "Copy your new key now" in created.content.decode()
    again = ops_client.get("/api-keys/").content.decode()
    assert raw not in again
    assert api_key.prefix in again and "olivia_ops" in again and "Never" in again
    entry = AuditEntry.objects.get(action="api_key.create")
    assert (entry.actor_user, entry.env, entry.after["name"]) == (ops, "sandbox", "Billing worker")


def test_a_key_needs_a_name(ops_client):
    response = ops_client.post("/api-keys/", {"name": "  ", "env": "live"})
    assert response.status_code == 422
    assert "This field is required" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_ops_revoke_a_key_and_it_stops_working(ops_client, ops, client, customer):
    api_key, raw = api_key_create(env="sandbox", name="Old worker", actor=ops)
    response = ops_client.post(f"/api-keys/{api_key.pk}/revoke/", follow=True)
    assert "Revoked “Old worker”" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_key.revoke", actor_user=ops).count() == 1
    assert ApiClient(client, raw).post("customers.get", {"customer_id": "acme_corp"}).status_code == 401


def test_revoke_asks_first_on_a_page_of_its_own_and_changes_nothing_until_confirmed(ops_client, ops):
    api_key, _ = api_key_create(env="sandbox", name="Worker", actor=ops)
    listing = ops_client.get("/api-keys/").content.decode()
    assert f'href="/api-keys/{api_key.pk}/revoke/"' in listing and "confirm(" not in listing
    page = ops_client.get(f"/api-keys/{api_key.pk}/revoke/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Revoke “Worker”?" in html and "401" in html and "never used" in html
    assert f'action="/api-keys/{api_key.pk}/revoke/"' in html
    assert 'href="/api-keys/">Keep key</a>' in html  # without JavaScript, the way back is a link
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_revoke_in_a_popup_with_htmx_goes_back_to_the_keys_when_confirmed(ops_client, ops):
    api_key, _ = api_key_create(env="sandbox", name="Worker", actor=ops)
    popup = ops_client.get(f"/api-keys/{api_key.pk}/revoke/", headers={"HX-Request": "true"})
    html = popup.content.decode()
    assert html.lstrip().startswith("<dialog") and "data-popup" in html and "Keep key" in html
    done = ops_client.post(f"/api-keys/{api_key.pk}/revoke/", headers={"HX-Request": "true"})
    assert done.status_code == 204 and done["HX-Redirect"] == "/api-keys/"
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_a_revoked_key_is_not_asked_about_again(ops_client, ops):
    api_key, _ = api_key_create(env="sandbox", name="Worker", actor=ops)
    ops_client.post(f"/api-keys/{api_key.pk}/revoke/")
    response = ops_client.get(f"/api-keys/{api_key.pk}/revoke/", follow=True)
    assert "“Worker” was already revoked." in response.content.decode()
    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1


def test_a_new_key_has_a_copy_button(ops_client):
    html = ops_client.post("/api-keys/", {"name": "Backend"}).content.decode()
    assert 'data-copy="#new-key-value"' in html and 'id="new-key-value"' in html


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_only_ops_manage_keys(client, role, request, ops):
    user = request.getfixturevalue(role)
    client.force_login(user)
    api_key, _ = api_key_create(env="sandbox", name="Worker", actor=ops)
    assert client.get("/api-keys/").status_code == 403
    assert client.post("/api-keys/", {"name": "Sneaky", "env": "live"}).status_code == 403
    assert client.get(f"/api-keys/{api_key.pk}/revoke/").status_code == 403
    assert client.post(f"/api-keys/{api_key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None
    assert b'href="/api-keys/"' not in client.get("/customers/").content


def test_ops_see_the_api_keys_link(ops_client):
    assert b'href="/api-keys/"' in ops_client.get("/customers/").content


def test_anonymous_is_sent_to_login(client):
    response = client.get("/api-keys/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
