"""Fixtures of the REST API tests: secret keys for each environment and a small JSON client."""

from __future__ import annotations

import json

import pytest

from customers.services.api_keys import api_key_create


class ApiClient:
    """Django's test client speaking JSON to /v1/ with a secret key."""

    def __init__(self, client, raw_key: str | None):
        self.client = client
        self.raw_key = raw_key

    def _headers(self, headers):
        base = {"Authorization": f"Bearer {self.raw_key}"} if self.raw_key else {}
        return {**base, **(headers or {})}

    def post(
        self,
        path: str,
        body=None,
        *,
        raw: str | bytes | None = None,
        content_type: str = "application/json",
        headers: dict | None = None,
    ):
        data = raw if raw is not None else json.dumps({} if body is None else body)
        return self.client.post(f"/v1/{path}", data=data, content_type=content_type, headers=self._headers(headers))

    def get(self, path: str, params: dict | None = None, headers: dict | None = None):
        return self.client.get(f"/v1/{path}", params or {}, headers=self._headers(headers))

    def patch(self, path: str, body=None, headers: dict | None = None):
        return self.client.patch(
            f"/v1/{path}", data=json.dumps(body or {}), content_type="application/json", headers=self._headers(headers)
        )

    def delete(self, path: str, headers: dict | None = None):
        return self.client.delete(f"/v1/{path}", headers=self._headers(headers))


@pytest.fixture
def sandbox_key(db, ops):
    """(ApiKey, raw key) of a sandbox key created by ops."""
    return api_key_create(env="sandbox", name="Backend (test)", actor=ops)


@pytest.fixture
def live_key(db, ops):
    return api_key_create(env="live", name="Backend (live)", actor=ops)


@pytest.fixture
def api(client, sandbox_key) -> ApiClient:
    return ApiClient(client, sandbox_key[1])


@pytest.fixture
def live_api(client, live_key) -> ApiClient:
    return ApiClient(client, live_key[1])


@pytest.fixture
def anonymous_api(client) -> ApiClient:
    return ApiClient(client, None)
