"""The customer page's Entities card, and Create entity / Delete entity through the test client: what ops and
other roles see, the seat used and given back, the audit entry, the refusals."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Balance, Entity
from billing.services.entities import entity_create, entity_delete
from billing.services.products import product_attach
from customers.models import AuditEntry
from tests.helpers import page_text

PAGE = "/customers/acme_corp/"
CREATE = "/customers/acme_corp/entities/create/"


@pytest.fixture
def on_pro(customer, catalogue):
    """Acme Corp on Pro (10 seats) with one entity, Ada."""
    product_attach(customer=customer, product=catalogue["pro"], actor=None)
    entity_create(customer=customer, entity_id="user_ada", name="Ada", feature=catalogue["seats"], actor=None)
    return customer


def _seats(customer, catalogue) -> Balance:
    return Balance.objects.get(customer=customer, feature=catalogue["seats"])


def test_the_entities_card_lists_them_with_their_feature_and_ops_controls(ops_client, on_pro):
    html = page_text(ops_client.get(PAGE))

    assert 'id="section-entities"' in html
    card = html[html.index('id="section-entities"') : html.index("</section>", html.index('id="section-entities"'))]
    assert "Ada" in card and "user_ada" in card and "Seats" in card
    assert 'href="/customers/acme_corp/entities/create/"' in card
    entity = Entity.objects.get()
    assert f'href="/customers/acme_corp/entities/{entity.pk}/delete/"' in card


def test_a_viewer_sees_the_entities_but_no_controls(client, viewer, on_pro):
    client.force_login(viewer)

    html = page_text(client.get(PAGE))

    assert "user_ada" in html
    assert "/entities/create/" not in html and "/delete/" not in html.split('id="section-entities"')[1][:3000]


def test_a_customer_without_entities_says_so(ops_client, customer):
    html = page_text(ops_client.get(PAGE))

    assert "No entities." in html


def test_ops_creates_an_entity_in_the_popup_and_it_uses_a_seat(ops_client, ops, on_pro, catalogue):
    shown = ops_client.get(CREATE, HTTP_HX_REQUEST="true")
    assert shown.status_code == 200 and page_text(shown).lstrip().startswith("<dialog")
    assert "Seats" in page_text(shown) and "Messages" not in page_text(shown)  # a consumable can't count entities

    response = ops_client.post(
        CREATE,
        {"entity_id": "user_bo", "name": "Bo", "feature": catalogue["seats"].pk, "reason": "new hire"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    html = page_text(response)
    assert 'id="section-entities"' in html and "user_bo" in html and "Created entity Bo for Acme Corp." in html
    assert _seats(on_pro, catalogue).remaining == 8
    entry = AuditEntry.objects.get(action="entity.create", target_id="user_bo")
    assert (entry.actor_user, entry.reason, entry.env) == (ops, "new hire", "sandbox")
    assert "created entity Bo (Seats)" in page_text(ops_client.get(PAGE))


def test_create_without_javascript_redirects_to_the_page(ops_client, on_pro, catalogue):
    response = ops_client.post(CREATE, {"entity_id": "user_bo", "feature": catalogue["seats"].pk})

    assert response.status_code == 302 and response.url == PAGE
    assert Entity.objects.filter(entity_id="user_bo", deleted_at__isnull=True).exists()


def test_an_id_in_use_or_a_bad_id_is_shown_next_to_the_field(ops_client, on_pro, catalogue):
    for entity_id, message in [("user_ada", "Entity user_ada already exists"), ("a b", "may contain only")]:
        response = ops_client.post(
            CREATE, {"entity_id": entity_id, "feature": catalogue["seats"].pk}, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 422
        assert message in page_text(response)
    assert Entity.objects.count() == 1
    assert _seats(on_pro, catalogue).remaining == 9


def test_no_seat_left_is_refused_with_its_reason(ops_client, on_pro, catalogue):
    Balance.objects.filter(customer=on_pro, feature=catalogue["seats"]).update(remaining=0)

    response = ops_client.post(
        CREATE, {"entity_id": "user_bo", "feature": catalogue["seats"].pk}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 422
    assert "has no Seats left" in page_text(response)
    assert not Entity.objects.filter(entity_id="user_bo").exists()


def test_ops_deletes_an_entity_with_a_reason_and_the_seat_comes_back(ops_client, ops, on_pro, catalogue):
    entity = Entity.objects.get()
    url = f"/customers/acme_corp/entities/{entity.pk}/delete/"
    assert "Delete entity Ada" in page_text(ops_client.get(url))

    no_reason = ops_client.post(url, {"reason": ""}, HTTP_HX_REQUEST="true")
    assert no_reason.status_code == 422 and "A reason is required." in page_text(no_reason)
    assert Entity.objects.get().deleted_at is None

    response = ops_client.post(url, {"reason": "left the company"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200 and "Deleted entity Ada of Acme Corp." in page_text(response)
    assert "No entities." in page_text(response)
    assert Entity.objects.get().deleted_at is not None
    assert _seats(on_pro, catalogue).remaining == 10
    entry = AuditEntry.objects.get(action="entity.delete")
    assert (entry.actor_user, entry.reason, entry.target_id) == (ops, "left the company", "user_ada")


def test_deleting_an_entity_deleted_meanwhile_changes_nothing(ops_client, on_pro, catalogue):
    entity = Entity.objects.get()
    url = f"/customers/acme_corp/entities/{entity.pk}/delete/"
    entity_delete(entity=entity, actor=None, reason="in another tab")

    response = ops_client.post(url, {"reason": "again"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 422 and "was already deleted" in page_text(response)
    assert _seats(on_pro, catalogue).remaining == 10
    assert AuditEntry.objects.filter(action="entity.delete").count() == 1
    assert ops_client.get(url).status_code == 404


def test_another_customers_entity_is_not_found(ops_client, on_pro, other_customer, catalogue):
    theirs = entity_create(customer=other_customer, entity_id="g1", feature=catalogue["seats"], actor=None)

    response = ops_client.post(f"/customers/acme_corp/entities/{theirs.pk}/delete/", {"reason": "x"})

    assert response.status_code == 404
    assert Entity.objects.get(pk=theirs.pk).deleted_at is None


def test_the_page_reads_entities_in_a_fixed_number_of_queries(ops_client, on_pro, catalogue):
    ops_client.get(PAGE)  # warm: the balance rows' fragment cache
    with CaptureQueriesContext(connection) as one:
        ops_client.get(PAGE)
    Entity.objects.bulk_create(
        Entity(customer=on_pro, entity_id=f"user_{n}", feature=catalogue["seats"]) for n in range(60)
    )

    with CaptureQueriesContext(connection) as many:
        html = page_text(ops_client.get(PAGE))

    assert len(many.captured_queries) <= len(one.captured_queries) + 1  # + the count, once there are more than 50
    assert "And 11 older" in html
