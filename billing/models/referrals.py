"""Referral programs (Autumn's reward programs), the codes customers share, and their redemptions.

A program belongs to one environment (Autumn's are per environment); so do its codes and redemptions, which
are its customers'. A program names a reward of the catalogue (shared by both environments) that the referrer,
or both parties, receive when a redemption is triggered: at once (`customer_creation`) or when the redeemer
first attaches one of the program's plans (`checkout`)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.features import SLUG_PATTERN
from billing.models.rewards import Reward
from customers.models import Customer, Env


class RedeemOn(models.TextChoices):
    CUSTOMER_CREATION = "customer_creation", "On redemption"
    CHECKOUT = "checkout", "On the redeemer's checkout"


class ReceivedBy(models.TextChoices):
    REFERRER = "referrer", "The referrer"
    ALL = "all", "Both parties"


class ReferralProgram(models.Model):
    env = models.CharField(max_length=8, choices=Env.choices)
    program_id = models.CharField("ID", max_length=255)
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="referral_programs")
    redeem_on = models.CharField(max_length=24, choices=RedeemOn.choices)
    received_by = models.CharField(max_length=16, choices=ReceivedBy.choices)
    max_redemptions = models.PositiveIntegerField(
        null=True, blank=True, help_text="Triggered redemptions one code allows; empty: unlimited."
    )
    plan_ids = models.JSONField(default=list, blank=True, help_text="Plans whose checkout triggers the reward.")
    exclude_trial = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["program_id"]
        constraints = [
            models.UniqueConstraint(fields=["env", "program_id"], name="referral_program_unique_per_env"),
            models.CheckConstraint(condition=Q(program_id__regex=SLUG_PATTERN), name="referral_program_id_pattern"),
            models.CheckConstraint(condition=Q(redeem_on__in=RedeemOn.values), name="referral_program_redeem_on"),
            models.CheckConstraint(condition=Q(received_by__in=ReceivedBy.values), name="referral_program_received"),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(max_redemptions__gte=1),
                name="referral_program_max_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.program_id


class ReferralCode(models.Model):
    """The code one customer shares for one program: one per customer and program, unique in its environment."""

    env = models.CharField(max_length=8, choices=Env.choices)
    code = models.CharField(max_length=64)
    program = models.ForeignKey(ReferralProgram, on_delete=models.CASCADE, related_name="codes")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="referral_codes")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["env", "code"], name="referral_code_unique_per_env"),
            models.UniqueConstraint(fields=["program", "customer"], name="referral_code_one_per_customer"),
        ]

    def __str__(self) -> str:
        return self.code


class ReferralRedemption(models.Model):
    """A customer redeeming another's code. `triggered` once the program's reward was given out; `referrer_applied`
    and `redeemer_applied` say who received it (a discount the customer already had is not given twice)."""

    code = models.ForeignKey(ReferralCode, on_delete=models.CASCADE, related_name="redemptions")
    program = models.ForeignKey(ReferralProgram, on_delete=models.CASCADE, related_name="redemptions")
    redeemer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="referral_redemptions")
    triggered = models.BooleanField(default=False)
    triggered_at = models.DateTimeField(null=True, blank=True)
    referrer_applied = models.BooleanField(default=False)
    redeemer_applied = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Autumn: a customer redeems one code per program.
            models.UniqueConstraint(fields=["program", "redeemer"], name="referral_redemption_once_per_program"),
        ]

    def __str__(self) -> str:
        return f"{self.redeemer_id} redeemed {self.code_id}"
