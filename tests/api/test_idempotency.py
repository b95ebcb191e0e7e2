"""Idempotency-Key: a retry gets the first answer; another body under the same key is a conflict."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from autumn_admin.api import balances as balances_api
from billing.models import Balance, Event
from customers.models import Customer, IdempotencyRecord
from customers.services.api_keys import api_key_create
from tests.api.conftest import ApiClient

TRACK = {"customer_id": "acme_corp", "feature_id": "messages", "value": 5}


def remaining(customer):
    return Balance.objects.get(customer=customer, feature__feature_id="messages").remaining


def test_retry_with_the_same_key_and_body_replays_the_first_answer(api, customer):
    first = api.post("balances.track", TRACK, headers={"Idempotency-Key": "track-1"})
    retry = api.post(
        "balances.track",
        {"value": 5, "feature_id": "messages", "customer_id": "acme_corp"},
        headers={"Idempotency-Key": "track-1"},
    )
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Event.objects.filter(customer=customer).count() == 1
    assert remaining(customer) == 95


def test_same_key_with_another_body_is_a_conflict_and_does_nothing(api, customer):
    api.post("balances.track", TRACK, headers={"Idempotency-Key": "track-1"})
    other = api.post("balances.track", {**TRACK, "value": 6}, headers={"Idempotency-Key": "track-1"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    elsewhere = api.post("customers.get_or_create", {"customer_id": "x"}, headers={"Idempotency-Key": "track-1"})
    assert elsewhere.status_code == 409
    assert remaining(customer) == 95 and not Customer.objects.filter(customer_id="x").exists()


def test_refusals_are_replayed_too(api, customer):
    first = api.post("customers.get_or_create", {"customer_id": "bad id"}, headers={"Idempotency-Key": "k"})
    again = api.post("customers.get_or_create", {"customer_id": "bad id"}, headers={"Idempotency-Key": "k"})
    assert first.status_code == again.status_code == 422
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"


def test_keys_belong_to_one_api_key(api, client, customer, ops):
    _, other_raw = api_key_create(env="sandbox", name="Other service", actor=ops)
    api.post("balances.track", TRACK, headers={"Idempotency-Key": "shared"})
    ApiClient(client, other_raw).post("balances.track", TRACK, headers={"Idempotency-Key": "shared"})
    assert Event.objects.filter(customer=customer).count() == 2


def test_without_a_key_each_post_does_the_work(api, customer):
    api.post("balances.track", TRACK)
    api.post("balances.track", TRACK)
    assert remaining(customer) == 90


def test_keys_are_kept_24_hours_and_forgotten_after(api, customer):
    api.post("balances.track", TRACK, headers={"Idempotency-Key": "day-old"})
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=23, minutes=59))
    assert api.post("balances.track", TRACK, headers={"Idempotency-Key": "day-old"})["Idempotent-Replayed"] == "true"
    assert remaining(customer) == 95
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    fresh = api.post("balances.track", TRACK, headers={"Idempotency-Key": "day-old"})
    assert not fresh.has_header("Idempotent-Replayed")
    assert remaining(customer) == 90


def test_purge_command_forgets_only_keys_older_than_a_day(api, customer, capsys):
    api.post("balances.track", TRACK, headers={"Idempotency-Key": "old"})
    api.post("balances.track", TRACK, headers={"Idempotency-Key": "new"})
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=2))
    call_command("purge_idempotency_records")
    assert "Forgot 1 idempotency key." in capsys.readouterr().out
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_unusable_idempotency_keys_are_refused(api, customer, key):
    response = api.post("balances.track", TRACK, headers={"Idempotency-Key": key})
    assert response.status_code == 400 and response.json()["code"] == "invalid_idempotency_key"
    assert Event.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_do_the_work_once(live_server, customer, sandbox_key, monkeypatch):
    real_track = balances_api.balance_track

    def slow_track(**kwargs):
        time.sleep(0.4)  # keep the first request working while the others arrive
        return real_track(**kwargs)

    monkeypatch.setattr(balances_api, "balance_track", slow_track)
    _, raw = sandbox_key
    start = threading.Barrier(4)
    answers = []

    def send():
        request = urllib.request.Request(
            f"{live_server.url}/v1/balances.track",
            data=json.dumps(TRACK).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json", "Idempotency-Key": "race-1"},
        )
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append((response.status, response.headers.get("Idempotent-Replayed"), response.read()))
        except urllib.error.HTTPError as error:
            answers.append((error.code, None, error.read()))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(status for status, _, _ in answers) == [200, 200, 200, 200]
    assert sorted(str(replayed) for _, replayed, _ in answers) == ["None", "true", "true", "true"]
    assert len({body for _, _, body in answers}) == 1
    assert Event.objects.filter(customer=customer).count() == 1
    assert remaining(customer) == 95
    assert IdempotencyRecord.objects.get(key="race-1").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_get_or_create_of_one_id_makes_one_customer(live_server, catalogue, sandbox_key):
    _, raw = sandbox_key
    start = threading.Barrier(4)
    statuses = []

    def send():
        request = urllib.request.Request(
            f"{live_server.url}/v1/customers.get_or_create",
            data=b'{"customer_id": "racer"}',
            method="POST",
            headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
        )
        start.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            statuses.append(response.status)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses == [200, 200, 200, 200]
    assert Customer.objects.filter(customer_id="racer").count() == 1
