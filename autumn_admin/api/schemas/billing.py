"""Attach: which plan billing.attach puts on a customer, and the checkout it may answer with."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import Field

from autumn_admin.api.schemas.common import CustomerId, Omittable, Params, PlanVersion, Slug

Url = Annotated[str, Field(min_length=1, max_length=2000)]


class AttachParams(Params):
    customer_id: CustomerId
    plan_id: Slug
    version: Omittable[PlanVersion] = None
    success_url: Url | None = None


class AttachOut(Schema):
    customer_id: str
    payment_url: str | None
    checkout_url: str | None = Field(description="The same as payment_url, under the name older clients read.")
    invoice: dict[str, Any] | None
    required_action: dict[str, Any] | None
