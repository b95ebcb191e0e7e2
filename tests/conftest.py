"""Named actors and catalogue fixtures shared by every test."""

from __future__ import annotations

import importlib
import os
import shutil
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from customers.services.customers import customer_create

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"


def pytest_collection_modifyitems(config, items):
    """Browser tests need Chromium: without it they are skipped visibly, except where it is required
    (REQUIRE_BROWSER=1: CI), where a missing one fails the run instead."""
    _skip_unless_browser(items)


def database_url(settings_dict=None) -> str:
    """A DATABASE_URL naming the database the tests use (pytest-django's test_<name>), for the processes
    they start: the server's host may be a Unix socket's folder (the embedded PostgreSQL's), which
    dj-database-url reads percent-encoded."""
    s = settings_dict or connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "") + "@" if s["USER"] else ""
    host = quote(s["HOST"] or "127.0.0.1", safe="")
    return f"postgres://{auth}{host}:{s['PORT'] or 5432}/{s['NAME']}"


def _skip_unless_browser(items) -> None:
    have_browser = os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)
    if have_browser:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1" and any(i.get_closest_marker("browser") for i in items):
        raise pytest.UsageError(f"REQUIRE_BROWSER=1 but Chromium was not found at {CHROMIUM}")
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


def ensure_roles() -> None:
    """Transactional tests flush the tables, data-migration rows included: recreate the groups."""
    if Group.objects.filter(name__in=["Ops", "Support", "Viewer"]).count() == 3:
        return
    from django.apps import apps

    importlib.import_module("billing.migrations.0002_roles").assign_roles(apps)
    importlib.import_module("billing.migrations.0016_bulk_jobs").assign_job_roles(apps)
    importlib.import_module("billing.migrations.0022_entities").assign_entity_roles(apps)
    importlib.import_module("billing.migrations.0025_invoice_actions").assign_invoice_roles(apps)


def _user(username: str, group: str | None = None, **extra) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, **extra)
    if group:
        ensure_roles()
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def ops(db) -> User:
    return _user("olivia_ops", "Ops")


@pytest.fixture
def support(db) -> User:
    return _user("sam_support", "Support")


@pytest.fixture
def viewer(db) -> User:
    return _user("vera_viewer", "Viewer")


@pytest.fixture
def superuser(db) -> User:
    return _user("root_admin", None, is_superuser=True, is_staff=True)


@pytest.fixture
def client():
    """pytest-django's client, posting each form with the environment of the page it came from."""
    from tests.helpers import DashboardClient

    return DashboardClient()


@pytest.fixture
def ops_client(client, ops):
    client.force_login(ops)
    return client


@pytest.fixture
def catalogue(db):
    """A small catalogue: a free plan, a flat plan, a usage plan with overage, and an add-on."""
    from billing.models import Feature, Price, Product, ProductItem

    messages = Feature.objects.create(
        feature_id="messages", name="Messages", type="metered", usage_type="single_use", event_names=["message_sent"]
    )
    seats = Feature.objects.create(feature_id="seats", name="Seats", type="metered", usage_type="continuous_use")
    sso = Feature.objects.create(feature_id="sso", name="SSO", type="boolean")
    api_calls = Feature.objects.create(
        feature_id="api_calls", name="API calls", type="metered", usage_type="single_use"
    )
    free = Product.objects.create(product_id="free", name="Free", is_default=True)
    ProductItem.objects.create(product=free, feature=messages, included=Decimal(100), interval="month")
    pro = Product.objects.create(product_id="pro", name="Pro")
    Price.objects.create(product=pro, type="fixed", amount=9900, currency="usd", interval="month")
    ProductItem.objects.create(product=pro, feature=messages, included=Decimal(5000), interval="month")
    ProductItem.objects.create(product=pro, feature=seats, included=Decimal(10), interval="lifetime")
    ProductItem.objects.create(product=pro, feature=sso, interval="lifetime")
    scale = Product.objects.create(product_id="scale", name="Scale")
    Price.objects.create(product=scale, type="fixed", amount=25000, currency="usd", interval="month")
    Price.objects.create(
        product=scale, type="usage", feature=api_calls, amount=100, billing_units=1000, currency="usd", interval="month"
    )
    ProductItem.objects.create(
        product=scale, feature=api_calls, included=Decimal(100000), interval="month", overage_allowed=True
    )
    ProductItem.objects.create(product=scale, feature=messages, included=Decimal(20000), interval="month")
    addon = Product.objects.create(product_id="seats_addon", name="Extra seats", is_add_on=True)
    Price.objects.create(product=addon, type="fixed", amount=2000, currency="usd", interval="month")
    ProductItem.objects.create(product=addon, feature=seats, included=Decimal(10), interval="lifetime")
    return {
        "messages": messages,
        "seats": seats,
        "sso": sso,
        "api_calls": api_calls,
        "free": free,
        "pro": pro,
        "scale": scale,
        "seats_addon": addon,
    }


@pytest.fixture
def customer(db, catalogue):
    """Acme Corp, in sandbox, on the free plan (the default product)."""
    return customer_create(env="sandbox", customer_id="acme_corp", actor=None, name="Acme Corp", email="ada@acme.test")


@pytest.fixture
def other_customer(db, catalogue):
    """Globex, another sandbox customer on the free plan."""
    return customer_create(env="sandbox", customer_id="globex", actor=None, name="Globex", email="hank@globex.test")


@pytest.fixture
def globex(db, catalogue):
    """Globex in live, on the free plan: a customer of the other environment."""
    return customer_create(env="live", customer_id="globex", actor=None, name="Globex", email="ops@globex.test")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Named users are created in most tests; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- customer page actions ------------------------------------------------------------------------


@pytest.fixture
def acme_on_scale(customer, catalogue):
    """Acme Corp moved to Scale: API calls allow overage at $1.00 per 1,000; messages don't."""
    from billing.services.products import product_attach

    product_attach(customer=customer, product=catalogue["scale"], actor=None)
    return customer


@pytest.fixture
def discount_rewards(db):
    """Two active discounts, one inactive one and a non-discount reward (not offered by Add Coupon)."""
    from billing.models import Reward

    return {
        "twenty": Reward.objects.create(
            reward_id="twenty_off",
            name="20% off",
            type="percentage_discount",
            value=Decimal(20),
            duration="months",
            duration_months=3,
        ),
        "ten_dollars": Reward.objects.create(
            reward_id="ten_dollars", name="$10 off", type="fixed_discount", value=Decimal(1000), duration="one_off"
        ),
        "retired": Reward.objects.create(
            reward_id="old_promo", name="Old promo", type="percentage_discount", value=Decimal(50), active=False
        ),
        "free_month": Reward.objects.create(
            reward_id="free_month", name="Free month", type="feature_grant", value=Decimal(100)
        ),
    }


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    """A fake Stripe API on 127.0.0.1 (tests/fake_stripe.py) in test mode, with the app's Stripe settings
    pointing at it: sandbox connected (its test-mode key and signing secret), live not connected."""
    import stripe
    from django.core.cache import cache

    from tests.fake_stripe import API_KEY, WEBHOOK_SECRET, running_fake_stripe

    # The library waits 0.5 s or more between retries; the tests only need the retries to happen.
    monkeypatch.setattr(stripe.HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0.01)
    with running_fake_stripe() as fake:
        settings.STRIPE_TEST_SECRET_KEY = API_KEY
        settings.STRIPE_LIVE_SECRET_KEY = ""
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TEST_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_LIVE_WEBHOOK_SECRET = ""
        settings.STRIPE_TIMEOUT = 2
        settings.STRIPE_MAX_NETWORK_RETRIES = 2
        cache.clear()
        yield fake
    cache.clear()


@pytest.fixture
def fake_stripe_live(fake_stripe, settings):
    """The same fake account's live mode (served by the same server, told apart by the key), with live
    connected too: its live-mode key and signing secret. `fake_stripe` stays the test mode."""
    from tests.fake_stripe import LIVE_API_KEY, LIVE_WEBHOOK_SECRET

    live = fake_stripe.live_mode()
    settings.STRIPE_LIVE_SECRET_KEY = LIVE_API_KEY
    settings.STRIPE_LIVE_WEBHOOK_SECRET = LIVE_WEBHOOK_SECRET
    return live


@pytest.fixture
def linked(customer, fake_stripe):
    """Acme Corp, linked to its customer in (fake) Stripe."""
    from customers.models import Customer

    stripe_customer = fake_stripe.add_customer(name="Acme Corp", email="ada@acme.test")
    Customer.objects.filter(pk=customer.pk).update(stripe_id=stripe_customer["id"])
    customer.refresh_from_db()
    return customer


@pytest.fixture
def credits_catalogue(catalogue):
    """A credit pool: AI credits, drawn by messages at 0.2 a message and by images at 0.6 an image. The AI
    plan gives 10 messages of their own and 100 credits a month; images have no balance of their own."""
    from billing.models import CreditCost, Feature, Product, ProductItem

    ai_credits = Feature.objects.create(feature_id="ai_credits", name="AI credits", type="credit_system")
    images = Feature.objects.create(
        feature_id="images", name="Images", type="metered", usage_type="single_use", event_names=["generation"]
    )
    catalogue["messages"].event_names = ["message_sent", "generation"]
    catalogue["messages"].save()
    CreditCost.objects.create(
        credit_system=ai_credits, metered_feature=catalogue["messages"], credit_cost=Decimal("0.2")
    )
    CreditCost.objects.create(credit_system=ai_credits, metered_feature=images, credit_cost=Decimal("0.6"))
    ai = Product.objects.create(product_id="ai", name="AI")
    ProductItem.objects.create(product=ai, feature=catalogue["messages"], included=Decimal(10), interval="month")
    ProductItem.objects.create(product=ai, feature=ai_credits, included=Decimal(100), interval="month")
    return {**catalogue, "ai_credits": ai_credits, "images": images, "ai": ai}


def on_the_ai_plan(customer_id: str, catalogue: dict, ops, now=None, name: str = ""):
    """A new sandbox customer on the AI plan alone (the default plan ended): 10 messages and 100 AI credits."""
    from billing.models import Balance, CustomerProduct
    from billing.services.products import product_attach

    customer = customer_create(env="sandbox", customer_id=customer_id, actor=None, name=name or customer_id)
    CustomerProduct.objects.filter(customer=customer).update(status="expired")
    Balance.objects.filter(customer=customer).delete()
    product_attach(customer=customer, product=catalogue["ai"], actor=ops, now=now)
    return customer


@pytest.fixture
def ai_customer(credits_catalogue, ops):
    """Acme Corp on the AI plan alone: 10 messages and 100 AI credits."""
    return on_the_ai_plan("acme_corp", credits_catalogue, ops, name="Acme Corp")
