"""Autumn's CLI, `atmn`, unchanged, against a running server of ours: pull the demo catalogue into
autumn.config.ts, push it back, edit it, push the edit, pull it again; and its headless list commands,
with the sandbox key and with the live key (`--prod`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from billing.catalogue.specs import plan_spec_of
from billing.models import CreditCost, CustomerProduct, Product
from billing.services.products import product_attach
from customers.models import AuditEntry, Customer
from customers.services.api_keys import api_key_create

ATMN_DIR = Path(__file__).resolve().parent.parent / "atmn"
ATMN = ATMN_DIR / "node_modules" / "atmn" / "dist" / "cli.js"

pytestmark = pytest.mark.django_db(transaction=True)


def atmn_or_skip() -> str:
    """The node binary, with atmn installed; else the test is skipped (failed under REQUIRE_NODE=1)."""
    node = shutil.which("node")
    if node is None or not ATMN.is_file():
        reason = "node is not installed" if node is None else "atmn is not installed: run `npm ci --prefix tests/atmn`"
        if os.environ.get("REQUIRE_NODE") == "1":
            pytest.fail(f"REQUIRE_NODE=1 but {reason}")
        pytest.skip(reason)
    return node


@pytest.fixture
def project(tmp_path, live_server, ops):
    """An application's folder: the demo catalogue on the server, both keys in .env, atmn resolvable."""
    node = atmn_or_skip()
    call_command("demo", sandbox=3, live=2, force=True)
    # atmn refuses a credit system without a schema: the demo's pool has one, and it round-trips too.
    assert CreditCost.objects.filter(credit_system__feature_id="ai_credits").count() == 2
    sandbox_key, sandbox_raw = api_key_create(env="sandbox", name="atmn (test)", actor=ops)
    live_key, live_raw = api_key_create(env="live", name="atmn (live)", actor=ops)
    (tmp_path / ".env").write_text(f"AUTUMN_SECRET_KEY={sandbox_raw}\nAUTUMN_PROD_SECRET_KEY={live_raw}\n")
    (tmp_path / "node_modules").symlink_to(ATMN_DIR / "node_modules", target_is_directory=True)

    def run(*args: str, ok: bool = True) -> str:
        env = {
            **os.environ,
            "ATMN_BACKEND_URL": live_server.url,
            "ATMN_DISABLE_AUTH_RECOVERY": "1",  # a 401 must fail, never open a browser
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
        }
        result = subprocess.run(
            [node, str(ATMN), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        out = result.stdout + result.stderr
        assert (result.returncode == 0) is ok, out
        return out

    run.config = tmp_path / "autumn.config.ts"
    run.sandbox_key, run.live_key = sandbox_key, live_key
    return run


def _catalogue() -> dict:
    products = Product.objects.filter(custom_for__isnull=True).prefetch_related("items__feature", "prices")
    return {(p.product_id, p.version): plan_spec_of(p) for p in products}


def test_pull_push_edit_push_pull_round_trips_the_demo_catalogue(project):
    before = _catalogue()
    assert "Pulled 8 features, 4 plans" in project("pull", "--headless")
    config = project.config.read_text()
    for plan_id in ("free", "pro", "scale", "seats_addon"):
        assert f"id: '{plan_id}'" in config
    assert "maxPurchase: 1750000" in config  # Scale's API calls: 250,000 included, capped at 2,000,000

    assert "Already in sync" in project("push", "--yes", "--headless")
    assert _catalogue() == before
    assert not AuditEntry.objects.filter(actor_api_key=project.sandbox_key).exclude(action="api_key.create").exists()

    # Customers are on Pro: raising its messages makes a new version, which atmn asks to be told about.
    acme = Customer.objects.get(customer_id="acme_corp")
    pro = Product.objects.get(product_id="pro", version=1)
    if not CustomerProduct.objects.filter(customer=acme, product=pro).exists():
        product_attach(customer=acme, product=pro, actor=None)
    edited = (
        config.replace("included: 5000,", "included: 6000,")
        .replace("name: 'Extra seats',", "name: 'More seats',")
        .replace(
            "// Plans",
            "export const exportsFeature = feature({ id: 'exports', name: 'Exports', type: 'metered', "
            "consumable: true });\n\n// Plans",
        )
    )
    edited += (
        "\nexport const team = plan({ id: 'team', name: 'Team', group: 'main', price: { amount: 49, interval: "
        "'month' }, freeTrial: { durationLength: 14, durationType: 'day', cardRequired: true }, "
        "items: [item({ featureId: exportsFeature.id, included: 20, reset: { interval: 'month' } })] });\n"
    )
    project.config.write_text(edited)
    assert 'plan "pro" needs an update intent' in project("push", "--yes", "--headless", ok=False)
    assert not Product.objects.filter(product_id="team").exists()  # nothing applied

    out = project("push", "--yes", "--headless", "--plan-intents", '{"pro":"create_version"}')
    assert "Features created: exports" in out and "Plans created: team" in out
    assert re.search(r"Plans updated: .*pro", out) and re.search(r"Plans updated: .*seats_addon", out)

    v1, v2 = Product.objects.get(product_id="pro", version=1), Product.objects.get(product_id="pro", version=2)
    assert v1.items.get(feature__feature_id="messages").included == 5000
    assert v2.items.get(feature__feature_id="messages").included == 6000
    assert CustomerProduct.objects.filter(customer=acme, product=v1).exists()  # acme keeps what it had
    assert Product.objects.get(product_id="seats_addon").name == "More seats"  # a name changes in place
    team = Product.objects.get(product_id="team")
    assert (team.trial_length, team.trial_unit, team.trial_card_required) == (14, "day", True)
    written = set(AuditEntry.objects.filter(actor_api_key=project.sandbox_key).values_list("action", "target_id"))
    assert {("plan.version", "pro"), ("plan.update", "seats_addon"), ("plan.create", "team")} <= written
    assert ("feature.create", "exports") in written

    project.config.unlink()
    project("pull", "--headless")
    pulled = project.config.read_text()
    assert "included: 6000," in pulled and "name: 'More seats'," in pulled and "id: 'team'" in pulled
    team_config = pulled[pulled.index("id: 'team'") :]
    assert re.search(r"freeTrial: \{\s*durationLength: 14,\s*durationType: 'day',\s*cardRequired: true", team_config)
    unchanged = {k: v for k, v in before.items() if k[0] not in ("pro", "seats_addon")}
    assert {k: v for k, v in _catalogue().items() if k in unchanged} == unchanged

    # The live key pushes to the same, shared catalogue: already in sync.
    assert "Already in sync" in project("push", "--yes", "--headless", "--prod", "--plan-intents", "{}")


def test_a_bad_config_is_refused_naming_the_field_and_nothing_changes(project):
    project("pull", "--headless")
    before = _catalogue()
    config = project.config.read_text()
    bad = config.replace("name: 'Extra seats',", "name: 'Bigger seats',").replace(
        "billingMethod: 'usage_based',", "billingMethod: 'prepaid',", 1
    )
    project.config.write_text(bad)
    out = project("push", "--yes", "--headless", ok=False)
    assert "items[0].price.billing_method: only usage_based prices" in out
    assert _catalogue() == before
    assert not AuditEntry.objects.filter(actor_api_key=project.sandbox_key, action__startswith="plan.").exists()


def test_headless_lists_show_the_catalogue_and_only_the_keys_environment(project):
    assert "Environment: Sandbox" in project("env")
    assert "Environment: Production" in project("env", "--prod")
    assert "Pulled 8 features, 4 plans" in project("pull", "--headless", "--prod")  # the one shared catalogue

    plans = project("plans", "--headless")
    assert all(p in plans for p in ("free", "pro", "scale", "seats_addon"))
    features = project("features", "--headless")
    assert all(
        f in features for f in ("ai_credits", "ai_chat", "image_generation", "api_calls", "messages", "seats", "sso")
    )

    sandbox_ids = set(Customer.objects.alive().filter(env="sandbox").values_list("customer_id", flat=True))
    live_ids = set(Customer.objects.alive().filter(env="live").values_list("customer_id", flat=True))
    for args, mine, theirs in (((), sandbox_ids, live_ids), (("--prod",), live_ids, sandbox_ids)):
        customers = project("customers", "--headless", *args)
        assert all(c in customers for c in mine), customers
        assert not any(c in customers for c in theirs - mine), customers
        events = project("events", "--headless", "--time", "90d", *args)
        shown = set(re.findall(r"^evt_\d+\s+.*?\s{2,}(\S+)\s{2,}", events, re.M))
        assert shown and shown <= mine, events

    chart = project("events", "--headless", "--mode", "aggregate", "--customer", "acme_corp", "--feature", "messages")
    assert "Customer: acme_corp" in chart and "messages" in chart
    other = project("events", "--headless", "--mode", "aggregate", "--customer", "acme_corp", "--prod", ok=False)
    assert "Customer acme_corp not found" in other  # a sandbox customer, asked with the live key
