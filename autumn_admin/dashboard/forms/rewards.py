"""Add Coupon's form: one of the active discount rewards."""

from __future__ import annotations

from django import forms

from autumn_admin.dashboard.forms.validation import ServiceErrorsMixin
from billing.models import DISCOUNT_REWARD_TYPES, Reward


class RewardChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, reward: Reward) -> str:
        return reward.name


class RewardAddForm(ServiceErrorsMixin, forms.Form):
    reward = RewardChoiceField(
        queryset=Reward.objects.filter(active=True, type__in=DISCOUNT_REWARD_TYPES).order_by("name"),
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={"required": "Select a reward.", "invalid_choice": "That reward can't be added."},
    )
    service_fields = {"reward": "reward"}


class RewardRemoveForm(ServiceErrorsMixin, forms.Form):
    """Nothing to fill in: posting it confirms the removal."""
