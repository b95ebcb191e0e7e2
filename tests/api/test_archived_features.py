"""Archiving a feature hides it from new plans; it never stops the balances customers hold. The catalogue is
shared by both environments and a sandbox key may archive, so a sandbox key must not be able to stop live
metering: tracks and checks of an archived feature keep answering, on the one-statement paths and the general
ones, in both environments."""

from __future__ import annotations

import itertools

import pytest

from billing.models import Balance, Feature
from customers.services.customers import customer_create

_KEYS = itertools.count()


def _archive_by_features_update(api):
    return api.post("features.update", {"feature_id": "messages", "archived": True})


def _archive_by_rest_post(api):
    return api.post("features/messages", {"archived": True})


def _archive_by_leaving_it_out_of_catalog_update(api):
    features = [f for f in api.post("features.list", {}).json()["list"] if f["id"] != "messages"]
    for f in features:
        f["feature_id"] = f.pop("id")
    return api.post("catalog.update", {"features": features, "plans": [], "skip_deletions": False})


ARCHIVE_WAYS = [_archive_by_features_update, _archive_by_rest_post, _archive_by_leaving_it_out_of_catalog_update]


def _general(api, path, body):
    """The general operation (an Idempotency-Key always takes it), not the one-statement path."""
    return api.post(path, body, headers={"Idempotency-Key": f"general-{next(_KEYS)}"})


@pytest.fixture
def live_globex(catalogue, ops):
    """Globex in live, on the free plan: 100 messages a month."""
    return customer_create(env="live", customer_id="globex", actor=ops, name="Globex")


@pytest.mark.parametrize("archive", ARCHIVE_WAYS, ids=lambda f: f.__name__.removeprefix("_archive_by_"))
def test_a_sandbox_key_archiving_a_feature_does_not_stop_live_tracks_and_checks(api, live_api, live_globex, archive):
    archived = archive(api)
    assert archived.status_code == 200, archived.content
    assert Feature.objects.get(feature_id="messages").archived is True

    body = {"customer_id": "globex", "feature_id": "messages"}
    fast_track = live_api.post("balances.track", {**body, "value": 3})
    general_track = _general(live_api, "balances.track", {**body, "value": 4})
    assert (fast_track.status_code, general_track.status_code) == (200, 200), general_track.content
    assert general_track.json()["balance"]["remaining"] == 93
    fast_check = live_api.post("balances.check", {**body, "required_balance": 93})
    general_check = _general(live_api, "balances.check", {**body, "required_balance": 94})
    assert fast_check.status_code == general_check.status_code == 200
    assert fast_check.json()["allowed"] is True and general_check.json()["allowed"] is False
    assert fast_check.json()["balance"]["remaining"] == 93
    by_event = _general(live_api, "balances.track", {"customer_id": "globex", "event_name": "message_sent"})
    assert by_event.status_code == 200, by_event.content
    assert Balance.objects.get(customer=live_globex, feature__feature_id="messages").remaining == 92


def test_a_sandbox_customer_keeps_tracking_and_checking_an_archived_feature(api, customer):
    assert _archive_by_features_update(api).status_code == 200
    body = {"customer_id": "acme_corp", "feature_id": "messages"}
    assert api.post("balances.track", {**body, "value": 10}).status_code == 200
    assert _general(api, "balances.track", {**body, "value": 5}).status_code == 200
    checked = api.post("balances.check", body)
    assert checked.status_code == 200 and checked.json()["balance"]["remaining"] == 85
    assert _general(api, "balances.check", body).json()["balance"]["remaining"] == 85


def test_an_archived_feature_is_still_offered_to_no_new_plan_or_grant(api, customer):
    """What archiving does do: a new grant of it is refused with the reason (the plans' forms hide it too)."""
    assert _archive_by_features_update(api).status_code == 200
    refused = api.post("balances.create", {"customer_id": "acme_corp", "feature_id": "messages", "included": 5})
    assert refused.status_code == 400 and "archived" in refused.json()["message"]
    assert Balance.objects.filter(customer=customer, feature__feature_id="messages").count() == 1
