"""Failed logins are limited per username and per client address, on the dashboard and in /admin/."""

import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.utils import timezone

from customers.models import AuditEntry, Customer
from customers.services.api_keys import api_key_create
from tests.conftest import PASSWORD
from tests.helpers import page_text

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = "logging in is blocked for 15 minutes, even with the right password"


def _login(client, username, password, *, url="/login/", **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def _fail(client, username, times, *, url="/login/", **extra):
    return [_login(client, username, "wrong-password", url=url, **extra) for _ in range(times)]


def _logged_in(client) -> bool:
    return client.get("/customers/").status_code == 200


def test_five_wrong_passwords_lock_the_username_even_with_the_right_password(client, ops):
    answers = _fail(client, ops.username, 5)
    assert [a.status_code for a in answers[:4]] == [200] * 4
    assert "correct username and password" in page_text(answers[0])
    assert answers[4].status_code == 429  # the fifth failure already says so

    response = _login(client, ops.username, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    text = page_text(response)
    assert "Too many failed logins for this username or from this address" in text
    assert BLOCKED in text
    assert 'href="/login/"' in response.content.decode()
    assert not _logged_in(client)


def test_the_address_limit_refuses_another_username_from_the_same_address(client, ops):
    for name in ("alice", "bob", "carol", "dave", "erin"):  # one failure each: no username reaches 5
        _fail(client, name, 1)
    response = _login(client, ops.username, PASSWORD)
    assert response.status_code == 429 and BLOCKED in page_text(response)
    assert not _logged_in(client)

    # Another address is not held back by them.
    response = _login(client, ops.username, PASSWORD, REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 302 and _logged_in(client)


def test_the_username_limit_holds_whatever_the_address(client, ops):
    for n in range(5):
        _fail(client, ops.username, 1, REMOTE_ADDR=f"10.0.0.{n + 1}")
    response = _login(client, ops.username, PASSWORD, REMOTE_ADDR="10.0.0.99")
    assert response.status_code == 429 and BLOCKED in page_text(response)
    assert not _logged_in(client)


def test_a_success_before_the_limit_resets_the_count(client, ops):
    _fail(client, ops.username, 4)
    assert _login(client, ops.username, PASSWORD).status_code == 302
    client.post("/logout/")
    assert not AccessAttempt.objects.exists()

    answers = _fail(client, ops.username, 4)
    assert all(a.status_code == 200 for a in answers)
    assert _login(client, ops.username, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_the_lockout_ends_after_the_cool_off(client, ops):
    _fail(client, ops.username, 5)
    assert _login(client, ops.username, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _login(client, ops.username, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_the_limit_and_the_wait_follow_the_settings(client, ops, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=90)
    _fail(client, ops.username, 2)
    response = _login(client, ops.username, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "5400"
    assert "logging in is blocked for 1 hour 30 minutes" in page_text(response)


def test_the_limit_and_the_wait_are_read_from_the_environment():
    env = {**os.environ, "LOGIN_FAILURE_LIMIT": "3", "LOGIN_LOCKOUT_MINUTES": "60"}
    code = "from django.conf import settings; print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "3 1:00:00"


def test_admin_login_is_limited_the_same_way(client, superuser):
    answers = _fail(client, superuser.username, 4, url="/admin/login/")
    assert all(a.status_code == 200 for a in answers)
    assert "correct username and password" in page_text(answers[0])
    _fail(client, superuser.username, 1, url="/admin/login/")

    response = _login(client, superuser.username, PASSWORD, url="/admin/login/")
    assert response.status_code == 429
    assert BLOCKED in page_text(response)
    assert 'href="/admin/login/"' in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still sent to the admin's login


def test_failures_on_either_login_page_count_together(client, superuser):
    _fail(client, superuser.username, 3, url="/login/")
    _fail(client, superuser.username, 2, url="/admin/login/")
    assert _login(client, superuser.username, PASSWORD, url="/admin/login/").status_code == 429


def test_forwarded_for_is_not_trusted_by_default(client, ops):
    for n in range(5):  # each failure claims another address; all come from one connection
        _fail(client, f"user{n}", 1, HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}")
    assert _login(client, ops.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_behind_a_proxy_the_address_the_proxy_saw_counts(client, ops, settings):
    settings.BEHIND_PROXY = True
    # The client may send its own X-Forwarded-For; the proxy appends the address it saw, the last one.
    for n in range(5):
        _fail(client, f"user{n}", 1, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.7")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}
    assert _login(client, ops.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # Another client behind the same proxy is not held back.
    assert _login(client, ops.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302


def test_the_api_bearer_key_is_not_affected_by_a_lockout(client, ops):
    _fail(client, ops.username, 5)
    _, raw_key = api_key_create(env="sandbox", name="Backend", actor=ops)
    response = client.post(
        "/v1/customers",
        {"id": "new_co", "name": "New Co"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw_key}",
    )
    assert response.status_code == 200, response.content
    assert Customer.objects.filter(customer_id="new_co").exists()


def test_superuser_sees_the_lockout_in_admin_and_can_clear_it(client, ops, superuser):
    _fail(client, ops.username, 5)
    attempt = AccessAttempt.objects.get(username=ops.username)

    admin_client = type(client)()
    admin_client.force_login(superuser)
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    text = page_text(listing)
    assert ops.username in text and "Locked Out" in text
    assert "Access attempts" in page_text(admin_client.get("/admin/"))

    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    cleared = AuditEntry.objects.get(action="admin.delete", target_type="login_lockout")
    assert (cleared.actor_user, cleared.reason) == (superuser, "Django admin")
    assert cleared.before["username"] == ops.username and cleared.before["failures_since_start"] == 5
    assert _login(client, ops.username, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_staff_without_permissions_cannot_see_lockouts(client, ops):
    _fail(client, ops.username, 5)
    staff = User.objects.create_user("stan_staff", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/axes/accessattempt/").status_code == 403
    assert "Access attempts" not in page_text(client.get("/admin/"))


@pytest.mark.django_db(transaction=True)
def test_a_lockout_over_a_real_connection(live_server, ops):
    """Through a real socket: the lockout page is what a browser gets, and the wrong-password page before it."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def post(password):
        page = opener.open(f"{live_server.url}/login/").read().decode()
        token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        data = urllib.parse.urlencode(
            {"username": ops.username, "password": password, "csrfmiddlewaretoken": token}
        ).encode()
        request = urllib.request.Request(
            f"{live_server.url}/login/", data=data, headers={"Referer": f"{live_server.url}/login/"}
        )
        try:
            with opener.open(request) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    for _ in range(4):
        status, body = post("wrong-password")
        assert status == 200 and "correct username and password" in body
    assert post("wrong-password")[0] == 429
    status, body = post(PASSWORD)
    assert status == 429
    assert "Too many failed logins" in body and "blocked for 15 minutes" in body
