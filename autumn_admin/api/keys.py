"""Keys: Autumn's customer tokens. A secret key mints a customer an access token (an hour, or indefinite) and a
refresh token (a day) that rotates the pair, and revokes all of a customer's tokens. The tokens are the API's
keys (customers/services/api_keys.py), bound to one customer of the secret key's environment."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from autumn_admin.api.errors import ApiError
from autumn_admin.api.lookups import customer_or_404
from autumn_admin.api.schemas.common import ErrorOut
from autumn_admin.api.schemas.keys import MintKeyParams, RevokedOut, RevokeKeyParams, TokenPairOut
from billing.shapes.units import ms
from customers.models import ApiKeyKind
from customers.services.api_keys import customer_token_mint, customer_token_refresh, customer_tokens_revoke

router = Router(tags=["keys"])

# A customer's token on a route it does not reach is a 403.
KEY_ERRORS = {(400, 401, 403, 404, 409, 422): ErrorOut}


def _pair_json(pair: dict) -> dict:
    answer = {"access_token": pair["access_token"], "expires_at": ms(pair["access"].expires_at)}
    if pair["refresh"] is not None:
        answer["refresh_token"] = pair["refresh_token"]
        answer["refresh_expires_at"] = ms(pair["refresh"].expires_at)
    return answer


@router.post(
    "/keys.mint",
    response={200: TokenPairOut, **KEY_ERRORS},
    exclude_unset=True,
    operation_id="mintKey",
    summary="Mint a customer's token",
)
def keys_mint(request: HttpRequest, params: MintKeyParams):
    """A token pair for a customer of the key's environment, to hand to that customer's app."""
    customer = customer_or_404(request, params.customer_id)
    pair = customer_token_mint(customer=customer, actor=request.api_key, indefinite=bool(params.indefinite))
    return _pair_json(pair)


@router.post(
    "/keys.refresh",
    response={200: TokenPairOut, **KEY_ERRORS},
    exclude_unset=True,
    operation_id="refreshKey",
    summary="Rotate a customer's token pair",
)
def keys_refresh(request: HttpRequest):
    """Called with the refresh token as the Bearer credential: it stops working, and a new pair is answered."""
    if request.api_key.kind != ApiKeyKind.REFRESH:
        raise ApiError(
            401, "keys.refresh takes a refresh token from keys.mint as the Bearer credential.", "invalid_request"
        )
    return _pair_json(customer_token_refresh(refresh=request.api_key))


@router.post(
    "/keys.revoke",
    response={200: RevokedOut, **KEY_ERRORS},
    operation_id="revokeKey",
    summary="Revoke a customer's tokens",
)
def keys_revoke(request: HttpRequest, params: RevokeKeyParams):
    """Every outstanding access and refresh token of the customer stops working."""
    customer = customer_or_404(request, params.customer_id)
    customer_tokens_revoke(customer=customer, actor=request.api_key)
    return {"revoked": True}
