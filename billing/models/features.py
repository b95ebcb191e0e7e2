"""Features: what a customer can use or be granted, and what a credit costs in features."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

SLUG_PATTERN = r"^[a-zA-Z0-9_-]+$"

# Quantities: up to 10^15 with 6 decimals (fractional credits exist).
QUANTITY = {"max_digits": 22, "decimal_places": 6}


class FeatureType(models.TextChoices):
    BOOLEAN = "boolean", "Boolean"
    METERED = "metered", "Metered"
    CREDIT_SYSTEM = "credit_system", "Credit system"


class UsageType(models.TextChoices):
    SINGLE_USE = "single_use", "Single use (consumed, resets)"
    CONTINUOUS_USE = "continuous_use", "Continuous use (allocated, never resets)"


class Interval(models.TextChoices):
    LIFETIME = "lifetime", "Never resets"  # one word for it on every page: never "Lifetime" or "one-off"
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"
    SEMI_ANNUAL = "semi_annual", "Half year"
    YEAR = "year", "Year"


class PriceInterval(models.TextChoices):
    ONE_OFF = "one_off", "One-off"
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"
    SEMI_ANNUAL = "semi_annual", "Half year"
    YEAR = "year", "Year"


class Feature(models.Model):
    feature_id = models.CharField("ID", max_length=255, unique=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=FeatureType.choices)
    usage_type = models.CharField(
        max_length=16,
        choices=UsageType.choices,
        blank=True,
        default="",
        help_text="For metered features: consumed each interval or allocated (seats).",
    )
    event_names = models.JSONField(
        default=list, blank=True, help_text="Event names that count towards this feature when tracked."
    )
    unit_label = models.CharField(max_length=32, blank=True, default="")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(feature_id__regex=SLUG_PATTERN), name="feature_id_pattern"),
            models.CheckConstraint(condition=Q(type__in=FeatureType.values), name="feature_type_valid"),
            models.CheckConstraint(
                condition=Q(usage_type__in=[*UsageType.values, ""]), name="feature_usage_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_metered(self) -> bool:
        return self.type != FeatureType.BOOLEAN


class CreditCost(models.Model):
    """One line of a credit system's schema: what one unit of a metered feature costs in credits.

    Tracking the metered feature draws first from the customer's own balance of it, then from the
    credit system's pool at this cost (Autumn's order)."""

    credit_system = models.ForeignKey(
        Feature,
        on_delete=models.CASCADE,
        related_name="credit_schema",
        limit_choices_to={"type": FeatureType.CREDIT_SYSTEM},
    )
    metered_feature = models.ForeignKey(
        Feature,
        on_delete=models.CASCADE,
        related_name="credit_costs",
        limit_choices_to={"type": FeatureType.METERED},
    )
    credit_cost = models.DecimalField(**QUANTITY, help_text="Credits drawn per unit of the metered feature.")

    class Meta:
        ordering = ["credit_system_id", "metered_feature_id"]
        constraints = [
            models.UniqueConstraint(fields=["credit_system", "metered_feature"], name="credit_cost_unique"),
            models.CheckConstraint(condition=Q(credit_cost__gt=0), name="credit_cost_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.metered_feature_id} × {self.credit_cost} → {self.credit_system_id}"

    def clean(self) -> None:
        """The schema's rules, for every form that edits a line (the admin's inline among them): a
        credit system lists metered features only, never itself, each at a cost above 0."""
        errors = {}
        system, metered = self._feature("credit_system"), self._feature("metered_feature")
        if system is not None and system.type != FeatureType.CREDIT_SYSTEM:
            errors["credit_system"] = f"{system.name} is not a credit system."
        if metered is not None and system is not None and (metered is system or metered.pk == system.pk):
            errors["metered_feature"] = "A credit system can't draw from itself."
        elif metered is not None and metered.type != FeatureType.METERED:
            errors["metered_feature"] = f"{metered.name} is not a metered feature: only metered features draw credits."
        if self.credit_cost is not None and self.credit_cost <= 0:
            errors["credit_cost"] = "A credit cost must be more than 0."
        if errors:
            raise ValidationError(errors)

    def _feature(self, name: str) -> Feature | None:
        """The feature a field names, saved or not (an inline's parent on its add page is not yet saved)."""
        try:
            return getattr(self, name)
        except Feature.DoesNotExist:
            return None
