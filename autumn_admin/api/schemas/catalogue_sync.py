"""The whole catalogue at once: what catalog.preview_update and catalog.update (atmn push) send, and the
changes and the written catalogue they answer."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema

from autumn_admin.api.schemas.catalogue import CreateFeatureParams, FeatureOut, PlanOut, UpdatePlanParams
from autumn_admin.api.schemas.common import Number, Params, Slug


class CatalogPlanIn(UpdatePlanParams):
    name: str


class CatalogUpdateParams(Params):
    features: list[CreateFeatureParams] | None = None
    plans: list[CatalogPlanIn] | None = None
    rewards: list[dict[str, Any]] | None = None
    referral_programs: list[dict[str, Any]] | None = None
    skip_deletions: bool | None = None
    skip_feature_ids: list[Slug] | None = None
    skip_plan_ids: list[Slug] | None = None
    migration: dict[str, Any] | None = None


class CatalogFeatureChangeOut(Schema):
    feature_id: str
    feature: FeatureOut | None
    action: Literal["create", "update", "remove", "skipped", "none"]
    will_archive: bool
    blocked: bool
    blocked_reason: str | None
    previous_attributes: dict[str, Any] | None


class CatalogItemChangeOut(Schema):
    feature_id: str
    action: Literal["added", "removed", "updated"]


class CatalogPlanChangeOut(Schema):
    plan_id: str
    version: Number | None
    plan: PlanOut | None
    action: Literal["created", "updated", "deleted", "skipped", "none"]
    will_archive: bool
    has_customers: bool
    customer_count: Number
    versionable: bool
    customize: None
    previous_attributes: dict[str, Any] | None
    item_changes: list[CatalogItemChangeOut]
    license_changes: list[Any]
    license_parents: list[Any]
    variants: list[Any]
    other_versions: list[Any]


class CatalogResourceChangeOut(Schema):
    id: str
    action: Literal["created", "updated", "deleted", "none", "conflict"]


class CatalogPreviewOut(Schema):
    plan_changes: list[CatalogPlanChangeOut]
    feature_changes: list[CatalogFeatureChangeOut]
    reward_changes: list[CatalogResourceChangeOut]
    referral_program_changes: list[CatalogResourceChangeOut]


class CatalogUpdateOut(Schema):
    plans: list[PlanOut]
    features: list[FeatureOut]
    rewards: list[Any]
    referral_programs: list[Any]
