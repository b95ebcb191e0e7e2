"""Coupons on a customer: Add Coupon, and removing one applied."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from autumn_admin.dashboard.forms.rewards import RewardAddForm, RewardRemoveForm
from autumn_admin.dashboard.permissions import APPLY_REWARD, customer_for_action
from autumn_admin.dashboard.popups import popup_action
from billing.models import CustomerReward
from billing.services.rewards import reward_apply, reward_remove

# The parts of the customer page a coupon changes.
SECTIONS = ["sidebar-rewards", "upcoming-invoice", "sidebar-activity"]


@require_http_methods(["GET", "POST"])
def reward_add(request, customer_id: str):
    customer = customer_for_action(request, customer_id, APPLY_REWARD)
    form = RewardAddForm(request.POST if request.method == "POST" else None)

    def add() -> str:
        reward = form.cleaned_data["reward"]
        reward_apply(customer=customer, reward=reward, actor=request.user)
        return f"Added {reward.name} to {customer.display_name}."

    applied = set(
        CustomerReward.objects.filter(customer=customer, removed_at__isnull=True).values_list("reward_id", flat=True)
    )
    context = {"applied": applied}
    return popup_action(
        request, customer, form=form, act=add, template="billing/reward_add.html", context=context, sections=SECTIONS
    )


@require_http_methods(["GET", "POST"])
def reward_remove_view(request, customer_id: str, cr_pk: int):
    customer = customer_for_action(request, customer_id, APPLY_REWARD)
    applied = get_object_or_404(
        CustomerReward.objects.select_related("reward"), pk=cr_pk, customer=customer, removed_at__isnull=True
    )
    form = RewardRemoveForm(request.POST if request.method == "POST" else None)

    def remove() -> str:
        reward_remove(customer_reward=applied, actor=request.user)
        return f"Removed {applied.reward.name} from {customer.display_name}."

    template = "billing/reward_remove.html"
    context = {"applied": applied}
    return popup_action(request, customer, form=form, act=remove, template=template, context=context, sections=SECTIONS)
