"""A page acts only on the environment it was shown for: every dashboard form carries it (`{% page_env %}`),
and a POST whose page was shown for the other environment (switched meanwhile, in another tab), or that
does not say, is refused with a 409 naming the switch, before any view runs: nothing changes."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.test import Client
from django.urls import get_resolver, resolve, reverse

from billing.models import Balance, BulkJob
from customers.models import ApiKey, Customer, SavedView
from customers.services.api_keys import api_key_create
from customers.services.customers import customer_create
from customers.services.saved_views import saved_view_create
from tests.helpers import form_values, page_text
from tests.test_actions_roles import ENDPOINTS, world  # noqa: F401 (the fixture)

HTMX = {"HTTP_HX_REQUEST": "true"}
SWITCHED = "This form was opened in Sandbox; you have since switched to Live. Nothing was done."
NOT_SAID = "This form does not say which environment it was opened in, so nothing was done."


def db_state() -> dict:
    """Every row of the domain's tables: what "nothing changed" compares."""
    state = {}
    for app in ("customers", "billing"):
        for model in apps.get_app_config(app).get_models():
            state[model._meta.label] = list(model.objects.order_by("pk").values_list())
    return state


def switch(client, env: str) -> None:
    client.post("/env/", {"env": env, "next": "/customers/"})


@pytest.fixture
def twins(db, catalogue):
    sandbox = customer_create(env="sandbox", customer_id="twin", actor=None, name="Sandbox twin")
    live = customer_create(env="live", customer_id="twin", actor=None, name="Live twin")
    return sandbox, live


@pytest.mark.parametrize("htmx", [False, True], ids=["plain form", "htmx"])
def test_delete_popup_opened_in_sandbox_and_submitted_after_a_switch_to_live_deletes_no_one(ops_client, twins, htmx):
    extra = HTMX if htmx else {}
    opened = ops_client.get("/customers/twin/delete/", **extra)
    assert "Sandbox twin" in page_text(opened)
    switch(ops_client, "live")  # another tab
    before = db_state()

    response = ops_client.post("/customers/twin/delete/", form_values(opened, confirm_id="twin"), **extra)

    assert response.status_code == 409
    html = page_text(response)
    assert SWITCHED in html and "Reload the page to act in Live." in html
    assert 'value="sandbox"' in html and "Switch back to Sandbox" in html
    if htmx:  # shown as a popup of its own, whatever the form targeted
        assert response["HX-Retarget"] == "body" and response["HX-Reswap"] == "beforeend"
        assert "<html" not in html and "data-popup" in html
    assert db_state() == before
    assert Customer.objects.filter(customer_id="twin", deleted_at__isnull=True).count() == 2
    # Reopened in live, the form deletes the live twin.
    reopened = ops_client.get("/customers/twin/delete/", **extra)
    again = ops_client.post("/customers/twin/delete/", form_values(reopened, confirm_id="twin"), **extra)
    assert again.status_code in (200, 302)
    assert Customer.objects.get(env="live", customer_id="twin").deleted_at is not None
    assert Customer.objects.get(env="sandbox", customer_id="twin").deleted_at is None


def test_bulk_job_previewed_in_sandbox_and_run_after_a_switch_to_live_runs_on_no_one(ops_client, customer, globex):
    data = {"scope": "all", "action": "add_balance", "act_feature": "messages", "act_amount": "10", "reason": "gift"}
    shown = ops_client.get("/bulk/", {"scope": "all", "action": "add_balance"})
    preview = ops_client.post("/bulk/", {**form_values(shown), **data})
    assert preview.status_code == 200 and "Run on 1 customer" in page_text(preview)
    switch(ops_client, "live")
    before = db_state()

    response = ops_client.post("/bulk/", form_values(preview, run="1"))

    assert response.status_code == 409 and SWITCHED in page_text(response)
    assert db_state() == before and not BulkJob.objects.exists()
    assert Balance.objects.get(customer=globex, feature__feature_id="messages").remaining == 100


# --- every POST of the dashboard ---------------------------------------------------------------------------


@pytest.fixture
def extras(world, ops):  # noqa: F811
    view = saved_view_create(owner=ops, env="sandbox", name="Mine", query="status=active", shared=False)
    key, _ = api_key_create(env="sandbox", name="Worker", actor=ops)
    return {"view": view, "key": key}


# name: (url, POST data); with ENDPOINTS (test_actions_roles.py), every URL of the dashboard that takes a POST.
MORE = {
    "edit metadata": (
        lambda w, x: "/customers/acme_corp/details/edit/?field=metadata",
        lambda w, x: {"key": ["tier"], "value": ["gold"], "expected": "{}"},
    ),
    "preview balance edit": (
        lambda w, x: f"/customers/acme_corp/balances/{w.messages.pk}/edit/",
        lambda w, x: {"mode": "set", "value": "150", "reason": "x", "expected_remaining": "100", "preview": "1"},
    ),
    "preview bulk job": (
        lambda w, x: "/bulk/",
        lambda w, x: (
            {"ids": w.customer.pk, "action": "add_balance", "act_feature": "messages", "act_amount": "1"}
            | {"reason": "x"}
        ),
    ),
    "save view": (lambda w, x: "/saved-views/", lambda w, x: {"name": "Active", "query": "status=active"}),
    "delete view": (lambda w, x: f"/saved-views/{x['view'].pk}/delete/", lambda w, x: {}),
    "create API key": (lambda w, x: "/api-keys/", lambda w, x: {"name": "Backend"}),
    "revoke API key": (lambda w, x: f"/api-keys/{x['key'].pk}/revoke/", lambda w, x: {}),
}
POSTS = {name: (lambda w, x, u=url: u(w), lambda w, x, d=data: d(w)) for name, (url, data, _) in ENDPOINTS.items()}
POSTS |= MORE
PREVIEWS = {"preview balance edit", "preview bulk job"}  # change nothing even when they go through


@pytest.mark.parametrize("page_env", ["live", None, "", "production"], ids=["other env", "missing", "empty", "unknown"])
@pytest.mark.parametrize("endpoint", list(POSTS))
def test_every_dashboard_post_from_a_page_of_another_or_no_environment_is_refused(
    world,  # noqa: F811
    extras,
    ops,
    endpoint,
    page_env,
):
    url, data = (f(world, extras) for f in POSTS[endpoint])
    client = Client()  # Django's own: it posts exactly the fields given
    client.force_login(ops)
    before = db_state()

    body = data if page_env is None else {**data, "page_env": page_env}
    response = client.post(url, body)

    assert response.status_code == 409, page_text(response)[:500]
    text = page_text(response)
    if page_env == "live":
        assert "This form was opened in Live; you have since switched to Sandbox. Nothing was done." in text
    else:
        assert NOT_SAID in text
    assert db_state() == before
    # The same form shown for this environment goes through.
    response = client.post(url, {**data, "page_env": "sandbox"})
    assert response.status_code in (200, 201, 302), page_text(response)[:2000]
    assert endpoint in PREVIEWS or db_state() != before


# URL names that take no POST (a POST to them changes nothing whatever it carries), and those outside the guard.
READ_ONLY = {
    "customers:list",
    "customers:export",
    "customers:deleted",
    "customers:detail",
    "customers:events",
    "customers:invoices",
    "catalogue",
    "stripe-status",
    "jobs",
    "job",
    "overview",
    "customers:usage",
    "customers:object",
    "billing:invoice-detail",
}
NOT_GUARDED = {"login", "logout", "switch-env", "stripe-webhook"}


def _dashboard_url_names() -> set[str]:
    names = set()

    def walk(patterns, namespace=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                if p.namespace not in ("admin", "api"):
                    walk(p.url_patterns, f"{p.namespace}:" if p.namespace else namespace)
            elif p.name and not str(p.pattern).startswith("v1/"):
                names.add(namespace + p.name)

    walk(get_resolver().url_patterns)
    return names


def test_the_check_above_covers_every_dashboard_url_that_takes_a_post(world, extras):  # noqa: F811
    posted = {resolve(url(world, extras).split("?")[0]).view_name for url, _ in POSTS.values()}

    assert _dashboard_url_names() - NOT_GUARDED == posted | READ_ONLY
    assert not posted & READ_ONLY


@pytest.mark.parametrize("name", sorted(READ_ONLY))
def test_the_read_only_pages_take_no_post(ops_client, world, name):  # noqa: F811
    args = {"customers:detail": ["acme_corp"], "customers:events": ["acme_corp"], "customers:invoices": ["acme_corp"]}
    args["customers:object"] = ["acme_corp"]
    args["customers:usage"] = ["acme_corp", "messages"]
    args["job"] = [world.job.pk]
    args["billing:invoice-detail"] = ["acme_corp", world.invoices["paid"].pk]
    before = db_state()

    response = ops_client.post(reverse(name, args=args.get(name, [])))

    assert response.status_code in (200, 405) and db_state() == before


class _PostForms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self.forms.append({"action": attrs.get("action"), "page_env": None})
        elif tag == "input" and attrs.get("name") == "page_env" and self.forms:
            self.forms[-1]["page_env"] = attrs.get("value")


PAGES = [
    "/customers/",
    "/customers/acme_corp/",
    "/deleted-customers/",
    "/api-keys/",
    "/jobs/",
    "/customers/acme_corp/details/edit/?field=name",
    "/customers/acme_corp/details/edit/?field=metadata",
    "/customers/acme_corp/balances/create/",
    "/customers/acme_corp/delete/",
    "/customers/acme_corp/rewards/add/",
    "/customers/acme_corp/entities/create/",
    "/customers/acme_corp/products/attach/",
    "/customers/acme_corp/features/messages/record-usage/",
    "/customers/acme_corp/features/messages/check/",
    "/new-customer/",
]


def _post_forms_of(client, pages: list[str]) -> list[tuple[str, dict]]:
    found = []
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        reader = _PostForms()
        reader.feed(response.content.decode())
        found += [(page, f) for f in reader.forms if f["action"] not in (reverse("switch-env"), reverse("logout"))]
    return found


def test_every_form_of_the_dashboard_says_which_environment_it_was_shown_for(ops_client, world, ops):  # noqa: F811
    view = saved_view_create(owner=ops, env="sandbox", name="Mine", query="status=active", shared=False)
    key, _ = api_key_create(env="sandbox", name="Worker", actor=ops)
    pages = [
        "/customers/?status=active",
        f"/customers/acme_corp/products/attach/?product={world.catalogue['pro'].pk}",
        *PAGES,
        f"/customers/acme_corp/balances/{world.messages.pk}/edit/",
        f"/customers/acme_corp/balances/{world.grant.pk}/delete/",
        f"/customers/acme_corp/rewards/{world.applied.pk}/remove/",
        f"/customers/acme_corp/entities/{world.entity.pk}/delete/",
        f"/customers/acme_corp/products/{world.product.pk}/customize/",
        f"/customers/acme_corp/products/{world.product.pk}/cancel/",
        f"/customers/acme_corp/products/{world.cancelling.pk}/uncancel/",
        f"/jobs/{world.job.pk}/",
        f"/api-keys/{key.pk}/revoke/",
        f"/customers/acme_corp/invoices/{world.invoices['open'].pk}/void/",
        f"/customers/acme_corp/invoices/{world.invoices['paid'].pk}/refund/",
        f"/customers/acme_corp/invoices/{world.invoices['paid'].pk}/credit/",
        f"/bulk/?ids={world.customer.pk}&action=add_balance",  # step 2: the action chosen, its POST form
    ]

    forms = _post_forms_of(ops_client, pages)

    posted_to = {resolve(form["action"].split("?")[0]).view_name for _, form in forms}
    extras = {"view": view, "key": key}
    assert posted_to == {resolve(url(world, extras).split("?")[0]).view_name for url, _ in POSTS.values()}
    assert [(page, form) for page, form in forms if form["page_env"] != "sandbox"] == []


def test_in_live_the_forms_say_live(ops_client, world):  # noqa: F811
    switch(ops_client, "live")
    customer_create(env="live", customer_id="acme_corp", actor=None)

    forms = _post_forms_of(
        ops_client, ["/api-keys/", "/customers/acme_corp/delete/", "/customers/acme_corp/details/edit/?field=name"]
    )

    assert len(forms) == 3 and {form["page_env"] for _, form in forms} == {"live"}


def test_an_api_request_is_not_asked_for_a_page_environment(world):  # noqa: F811
    raw = api_key_create(env="sandbox", name="Backend", actor=None)[1]
    response = Client().post(
        "/v1/customers.update",
        data='{"customer_id": "acme_corp", "name": "Acme Ltd"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200 and Customer.objects.get(pk=world.customer.pk).name == "Acme Ltd"
    assert ApiKey.objects.count() == 1 and not SavedView.objects.exists()


@pytest.mark.parametrize("popup", ["delete/", "details/edit/?field=name", "products/attach/"])
def test_a_popup_opened_from_a_sandbox_page_after_a_switch_to_live_shows_nothing_of_live(ops_client, twins, popup):
    page = ops_client.get("/customers/twin/")
    assert '"X-Page-Env": "sandbox"' in page_text(page)  # what every htmx request of the page says
    switch(ops_client, "live")  # another tab

    response = ops_client.get(f"/customers/twin/{popup}", HTTP_HX_REQUEST="true", HTTP_X_PAGE_ENV="sandbox")

    assert response.status_code == 409
    html = page_text(response)
    assert "This page was shown in Sandbox; you have since switched to Live. Nothing was done." in html
    assert "Live twin" not in html and 'name="page_env"' not in html
    # From a page shown in live, the same popup opens.
    opened = ops_client.get(f"/customers/twin/{popup}", HTTP_HX_REQUEST="true", HTTP_X_PAGE_ENV="live")
    assert opened.status_code == 200 and "Environment switched" not in page_text(opened)


def test_a_plain_get_shows_the_sessions_environment(ops_client, twins):
    switch(ops_client, "live")

    assert "Live twin" in page_text(ops_client.get("/customers/twin/", HTTP_X_PAGE_ENV="sandbox"))
