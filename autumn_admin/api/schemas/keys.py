"""Keys: what keys.mint and keys.revoke read, and the token pair they answer (autumn_sdk's mintkeyop)."""

from __future__ import annotations

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import CustomerId, Number, Omittable, Params


class MintKeyParams(Params):
    customer_id: CustomerId
    indefinite: Omittable[bool] = Field(
        False, description="A non-expiring access token without a refresh token; revoke it with keys.revoke."
    )


class RevokeKeyParams(Params):
    customer_id: CustomerId


class TokenPairOut(Schema):
    access_token: str = Field(description="Reaches only its customer's check, track, customers.get and events.")
    expires_at: Number | None = Field(description="The access token's end, ms since the epoch; null: indefinite.")
    refresh_token: str | None = Field(None, description="Rotates the pair with keys.refresh (left out: indefinite).")
    refresh_expires_at: Number | None = Field(None, description="The refresh token's end, ms since the epoch.")


class RevokedOut(Schema):
    revoked: bool
