"""The ground everything stands on: settings, login, roles, demo data."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import Balance, Event, Feature, Invoice, Product, Reward
from customers.models import AuditEntry, Customer

ROOT = Path(__file__).resolve().parent.parent
A_REAL_KEY = "k7Qx-2vLp9_ZcR4mN8wT1yHbE6uJ3sFdA0gK5oV_iXqW7rYtBn"  # 50 characters, as `check --deploy` asks


def _check_settings(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _check_settings({"DEBUG": "0", "ALLOWED_HOSTS": "billing.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_a_malformed_debug_flag():
    result = _check_settings({"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


@pytest.mark.parametrize(
    "key",
    [A_REAL_KEY[:32], A_REAL_KEY[:49], "x" * 50, "ab" * 30, "django-insecure-" + A_REAL_KEY],
    ids=["32 characters", "49 characters", "one character repeated", "two characters", "django's insecure prefix"],
)
def test_production_refuses_a_secret_key_that_check_deploy_would_warn_about(key):
    result = _check_settings({"DEBUG": "0", "SECRET_KEY": key, "ALLOWED_HOSTS": "billing.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set to a random value of at least 50 characters" in result.stderr
    assert key not in result.stderr  # the message never repeats the secret


def test_a_key_production_accepts_passes_check_deploy_without_a_secret_key_warning():
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**clean, "DEBUG": "0", "SECRET_KEY": A_REAL_KEY, "ALLOWED_HOSTS": "billing.example.com"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "security.W009" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_production_starts_with_a_real_secret_key():
    result = _check_settings({"DEBUG": "0", "SECRET_KEY": A_REAL_KEY, "ALLOWED_HOSTS": "billing.example.com"})
    assert result.returncode == 0, result.stderr


def test_roles_exist_with_their_permissions(db):
    perms = {
        g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()}
        for g in Group.objects.prefetch_related("permissions__content_type")
    }
    assert {"Ops", "Support", "Viewer"} <= set(perms)
    assert {
        "billing.adjust_balance",
        "billing.apply_reward",
        "customers.restore_customer",
        "customers.manage_api_keys",
        "customers.delete_customer",
    } <= perms["Ops"]
    assert "billing.adjust_balance" in perms["Support"]
    assert not {"billing.apply_reward", "customers.change_customer", "customers.delete_customer"} & perms["Support"]
    assert all(p.split(".")[1].startswith("view_") for p in perms["Viewer"])


@pytest.mark.parametrize("url", ["/", "/customers/", "/customers/acme_corp/"])
def test_anonymous_visitor_is_sent_to_login(client, db, url):
    response = client.get(url, follow=False)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_and_logout(client, ops):
    response = client.post("/login/", {"username": ops.username, "password": "correct-horse-battery"}, follow=True)
    assert response.redirect_chain[-1][0] == "/customers/"
    assert b"Customers" in response.content
    response = client.post("/logout/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert client.get("/customers/").status_code == 302


def test_login_with_a_wrong_password_says_so(client, ops):
    response = client.post("/login/", {"username": ops.username, "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_demo_data_is_idempotent_and_creates_the_logins(db, capsys, monkeypatch, settings):
    settings.DEBUG = True
    monkeypatch.setenv("DEMO_PASSWORD", "s3cret-demo")
    call_command("demo", sandbox=6, live=2)
    out = capsys.readouterr().out
    assert "ops" in out and "support" in out and "viewer" in out and "admin" in out
    counts = (
        Customer.objects.count(),
        Event.objects.count(),
        Invoice.objects.count(),
        Balance.objects.count(),
        AuditEntry.objects.count(),
        Product.objects.count(),
        Reward.objects.count(),
    )
    call_command("demo", sandbox=6, live=2)
    assert (
        Customer.objects.count(),
        Event.objects.count(),
        Invoice.objects.count(),
        Balance.objects.count(),
        AuditEntry.objects.count(),
        Product.objects.count(),
        Reward.objects.count(),
    ) == counts
    assert Customer.objects.filter(env="sandbox").count() == 6
    assert Customer.objects.filter(env="live").count() == 2
    assert Event.objects.filter(customer__customer_id="acme_corp").count() > 100
    for name, group in (("ops", "Ops"), ("support", "Support"), ("viewer", "Viewer")):
        user = User.objects.get(username=name)
        assert user.check_password("s3cret-demo")
        assert list(user.groups.values_list("name", flat=True)) == [group]
    assert User.objects.get(username="admin").is_superuser
    acme = Customer.objects.get(customer_id="acme_corp")
    assert AuditEntry.objects.filter(customer=acme, action="balance.set").exists()


def test_demo_prints_its_progress_as_it_goes(db, capsys, settings):
    settings.DEBUG = True
    call_command("demo", sandbox=20, live=3)
    lines = capsys.readouterr().out.splitlines()
    progress = [line.split("] ", 1)[1] for line in lines if line.startswith("[") and " s] " in line]
    assert progress[0] == "Logins and catalogue ready."
    assert [line for line in progress if line.startswith("sandbox:")] == [
        f"sandbox: {n} of 20 customers ({n} new so far)" for n in range(2, 21, 2)
    ]
    assert [line for line in progress if line.startswith("live:")] == [
        f"live: {n} of 3 customers ({20 + n} new so far)" for n in (1, 2, 3)
    ]
    assert progress[-1] == "Summing the events into the daily usage the graphs read..."
    assert lines[len(progress)].startswith("Demo data ready: 23 new customers")

    call_command("demo", sandbox=20, live=3, verbosity=0)  # nothing new, and quiet when asked
    assert " s] " not in capsys.readouterr().out


def test_demo_refuses_to_run_with_debug_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("demo", sandbox=1, live=0)


def test_a_user_without_a_role_sees_no_customers(client, db, customer):
    nobody = User.objects.create_user("no_role", password="x")
    client.force_login(nobody)
    for url in ("/customers/", "/customers/acme_corp/", reverse("customers:export")):
        response = client.get(url)
        assert response.status_code == 403
        assert b"no role yet" in response.content
    assert client.post("/logout/").status_code == 302


def test_the_user_menu_names_the_role(client, ops, support, viewer, superuser):
    for user, label in ((ops, "Ops"), (support, "Support"), (viewer, "Viewer"), (superuser, "Superuser")):
        client.force_login(user)
        assert f'<p class="muted">{label}</p>' in client.get("/customers/").content.decode()


_FORWARDED_HTTPS = """
import django
django.setup()
from django.test import Client
for proto in ("https", "http"):
    response = Client().get("/healthz", headers={"X-Forwarded-Proto": proto})
    print(proto, response.status_code, response.get("Location", ""), sep="|")
"""


def _served_as(env: dict) -> dict[str, tuple[str, str]]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "BEHIND_PROXY")}
    result = subprocess.run(
        [sys.executable, "-c", _FORWARDED_HTTPS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "autumn_admin.settings",
            "DEBUG": "0",
            "SECRET_KEY": A_REAL_KEY,
            "ALLOWED_HOSTS": "testserver",
            **env,
        },
    )
    assert result.returncode == 0, result.stderr
    return {
        proto: (status, location)
        for proto, status, location in (line.split("|") for line in result.stdout.splitlines())
    }


def test_production_does_not_believe_a_forwarded_https_header_unless_behind_a_proxy():
    answers = _served_as({})
    # Any client can send the header: without a proxy that sets it, the request is still plain http.
    assert answers["https"] == ("301", "https://testserver/healthz")
    assert answers["http"] == ("301", "https://testserver/healthz")


def test_behind_a_proxy_the_forwarded_https_header_is_believed():
    answers = _served_as({"BEHIND_PROXY": "1"})
    assert answers["https"] == ("200", "")
    assert answers["http"] == ("301", "https://testserver/healthz")


def test_a_malformed_behind_proxy_flag_refuses_to_start():
    result = _check_settings(
        {"DEBUG": "0", "SECRET_KEY": A_REAL_KEY, "ALLOWED_HOSTS": "billing.example.com", "BEHIND_PROXY": "perhaps"}
    )
    assert result.returncode != 0
    assert "BEHIND_PROXY must be a boolean" in result.stderr


def test_the_demo_has_a_working_credit_pool(db, settings):
    """AI credits list the replies and images that draw from them; a Scale customer's pool is drawn by them,
    in credits, never below 0, and a track of a reply now draws from it at its cost."""
    from billing.models import CreditCost, DailyUsage
    from billing.services.track import balance_track

    settings.DEBUG = True
    call_command("demo", sandbox=12, live=0)
    schema = dict(
        CreditCost.objects.filter(credit_system__feature_id="ai_credits").values_list(
            "metered_feature__feature_id", "credit_cost"
        )
    )
    assert schema == {"ai_chat": Decimal("0.2"), "image_generation": Decimal("0.6")}
    pools = Balance.objects.filter(feature__feature_id="ai_credits").select_related("customer", "feature")
    assert pools.exists()
    for pool in pools:
        draws = Event.objects.filter(customer=pool.customer, feature=pool.feature, drawn_for__isnull=False)
        assert draws.exists()
        assert all(0 < d.value <= d.drawn_for.value * schema[d.drawn_for.feature.feature_id] for d in draws)
        assert 0 <= pool.remaining <= pool.allowance
        assert DailyUsage.objects.filter(customer=pool.customer, feature=pool.feature).exists()
    pool = pools.filter(remaining__gte=1).first()
    before = pool.remaining
    balance_track(customer=pool.customer, feature=Feature.objects.get(feature_id="ai_chat"), value=5, actor=None)
    pool.refresh_from_db()
    assert pool.remaining == before - 1
