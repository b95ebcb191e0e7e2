"""What every dashboard request pays before its own work: the session, the user and the user's role. The
user and the role come back in one query, read afresh on every request, so a change of role shows on
the very next request, in whatever server process it lands."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import PASSWORD
from tests.html import page_of

URL = "/customers/acme_corp/"


def _get(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    return response, [q["sql"] for q in captured]


def test_a_logged_in_request_reads_the_user_and_the_role_in_one_query(client, ops):
    client.post("/login/", {"username": ops.username, "password": PASSWORD})  # as a person logs in
    response, queries = _get(client, "/customers/")
    assert response.status_code == 200
    auth = [sql for sql in queries if 'FROM "auth_' in sql]  # (the list's saved views join their owner)
    assert len(auth) == 1, auth  # the user with both permission sets; no separate permission queries
    session = [sql for sql in queries if "django_session" in sql]
    assert len(session) == 1  # read, not written (nothing in it changed)


def test_a_role_change_shows_on_the_next_request(client, ops, customer):
    client.force_login(ops)
    assert "Create Balance" in page_of(client.get(URL))

    ops.groups.set([Group.objects.get(name="Viewer")])
    page = page_of(client.get(URL))
    assert "Acme Corp" in page and "Create Balance" not in page

    ops.groups.clear()
    response = client.get(URL)
    assert response.status_code == 403  # no role: the no-role page, not the customer

    ops.groups.set([Group.objects.get(name="Ops")])
    assert "Create Balance" in page_of(client.get(URL))


def test_a_permission_taken_from_the_role_itself_shows_on_the_next_request(client, ops, customer):
    client.force_login(ops)
    assert "Create Balance" in page_of(client.get(URL))
    ops_group = Group.objects.get(name="Ops")
    ops_group.permissions.remove(Permission.objects.get(codename="adjust_balance"))
    assert "Create Balance" not in page_of(client.get(URL))


def test_a_deactivated_user_is_logged_out_on_the_next_request(client, ops, customer):
    client.force_login(ops)
    assert client.get(URL).status_code == 200
    ops.is_active = False
    ops.save(update_fields=["is_active"])
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_superuser_without_a_role_may_do_everything(client, superuser, customer):
    client.force_login(superuser)
    page = page_of(client.get(URL))
    assert "Create Balance" in page and "Attach Product" in page


def test_with_a_shared_cache_a_request_reads_its_session_from_the_cache_and_logging_out_ends_it(
    client, ops, customer, settings
):
    # What REDIS_URL selects (settings.py), here with the process-local cache standing in for Redis.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    client.post("/login/", {"username": ops.username, "password": PASSWORD})
    client.get(URL)
    response, queries = _get(client, URL)
    assert response.status_code == 200
    assert not [sql for sql in queries if "django_session" in sql]
    assert len([sql for sql in queries if 'FROM "auth_user" WHERE' in sql]) == 1  # the user, with the role
    client.post("/logout/")
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
