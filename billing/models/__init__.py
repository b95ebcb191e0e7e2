"""Billing's models, one module per subject. Every model and constant is named here, so `from billing.models import X`
keeps working and Django finds the models when it imports this package."""

from billing.models.balances import Balance, LiveBalanceManager
from billing.models.bulk_jobs import BulkJob, BulkJobItem, BulkJobItemStatus, BulkJobStatus
from billing.models.customer_products import (
    HELD_PRODUCT_STATUSES,
    LIVE_PRODUCT_STATUSES,
    STATUS_LABELS,
    CustomerProduct,
    CustomerProductStatus,
    keep_live_product_flag,
    live_product_exists,
)
from billing.models.entities import Entity, EntityQuerySet
from billing.models.features import (
    QUANTITY,
    SLUG_PATTERN,
    CreditCost,
    Feature,
    FeatureType,
    Interval,
    PriceInterval,
    UsageType,
)
from billing.models.invoices import (
    CreditNote,
    CreditNoteReason,
    Invoice,
    InvoiceRefund,
    InvoiceStatus,
    StripeEvent,
)
from billing.models.products import Price, Product, ProductItem, ProductQuerySet, TrialUnit
from billing.models.referrals import ReceivedBy, RedeemOn, ReferralCode, ReferralProgram, ReferralRedemption
from billing.models.rewards import DISCOUNT_REWARD_TYPES, CustomerReward, Reward, RewardDuration, RewardType
from billing.models.usage import DailyCreditDraw, DailyUsage, Event, EventIdempotencyKey, UsageRollup

__all__ = [
    "SLUG_PATTERN",
    "QUANTITY",
    "FeatureType",
    "UsageType",
    "Interval",
    "PriceInterval",
    "Feature",
    "CreditCost",
    "ProductQuerySet",
    "TrialUnit",
    "Product",
    "Price",
    "ProductItem",
    "CustomerProductStatus",
    "STATUS_LABELS",
    "LIVE_PRODUCT_STATUSES",
    "HELD_PRODUCT_STATUSES",
    "CustomerProduct",
    "live_product_exists",
    "keep_live_product_flag",
    "LiveBalanceManager",
    "Balance",
    "Event",
    "EventIdempotencyKey",
    "DailyCreditDraw",
    "DailyUsage",
    "UsageRollup",
    "RewardType",
    "DISCOUNT_REWARD_TYPES",
    "RewardDuration",
    "Reward",
    "CustomerReward",
    "RedeemOn",
    "ReceivedBy",
    "ReferralProgram",
    "ReferralCode",
    "ReferralRedemption",
    "InvoiceStatus",
    "Invoice",
    "InvoiceRefund",
    "CreditNote",
    "CreditNoteReason",
    "StripeEvent",
    "BulkJobStatus",
    "BulkJob",
    "BulkJobItemStatus",
    "BulkJobItem",
    "EntityQuerySet",
    "Entity",
]
