"""Rewards (discounts, free products, granted features) and the ones a customer holds."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.features import (
    QUANTITY,
    SLUG_PATTERN,
    Feature,
)
from billing.models.products import Product
from customers.models import Customer


class RewardType(models.TextChoices):
    PERCENTAGE_DISCOUNT = "percentage_discount", "Percentage discount"
    FIXED_DISCOUNT = "fixed_discount", "Fixed discount"
    FREE_PRODUCT = "free_product", "Free product"
    FEATURE_GRANT = "feature_grant", "Feature grant"


DISCOUNT_REWARD_TYPES = (RewardType.PERCENTAGE_DISCOUNT, RewardType.FIXED_DISCOUNT)


class RewardDuration(models.TextChoices):
    ONE_OFF = "one_off", "Once"
    MONTHS = "months", "Months"
    FOREVER = "forever", "Forever"


class Reward(models.Model):
    reward_id = models.CharField("ID", max_length=255, unique=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=24, choices=RewardType.choices)
    value = models.DecimalField(
        **QUANTITY,
        default=Decimal(0),
        help_text="Percent off for a percentage discount; minor units off for a fixed one; units for a grant.",
    )
    currency = models.CharField(max_length=3, default="usd")
    duration = models.CharField(max_length=8, choices=RewardDuration.choices, default=RewardDuration.ONE_OFF)
    duration_months = models.PositiveSmallIntegerField(null=True, blank=True)
    promo_codes = models.JSONField(default=list, blank=True)
    free_product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    grant_feature = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    stripe_coupon_id = models.CharField(
        "Stripe test-mode coupon",
        max_length=255,
        blank=True,
        default="",
        help_text="The coupon standing for it in Stripe's test mode, for sandbox customers.",
    )
    stripe_live_coupon_id = models.CharField(
        "Stripe live-mode coupon",
        max_length=255,
        blank=True,
        default="",
        help_text="The coupon standing for it in Stripe's live mode, for live customers.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(reward_id__regex=SLUG_PATTERN), name="reward_id_pattern"),
            models.CheckConstraint(condition=Q(type__in=RewardType.values), name="reward_type_valid"),
            models.CheckConstraint(condition=Q(duration__in=RewardDuration.values), name="reward_duration_valid"),
            models.CheckConstraint(condition=Q(value__gte=0), name="reward_value_non_negative"),
            models.CheckConstraint(
                condition=~Q(type="percentage_discount") | Q(value__lte=100), name="reward_percentage_max_100"
            ),
            models.CheckConstraint(
                condition=~Q(duration="months") | Q(duration_months__gte=1), name="reward_months_needs_count"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_discount(self) -> bool:
        return self.type in DISCOUNT_REWARD_TYPES


class CustomerReward(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="customer_rewards")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="customer_rewards")
    applied_at = models.DateTimeField(default=timezone.now)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until removed (or used once).")
    removed_at = models.DateTimeField(null=True, blank=True)
    stripe_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-applied_at", "-id"]
        permissions = [("apply_reward", "Can add and remove a customer's rewards")]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "reward"],
                condition=Q(removed_at__isnull=True),
                name="customer_reward_unique_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.reward}"
