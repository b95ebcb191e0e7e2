"""Who may do what on the dashboard. Views check here; templates hide what a user may not use."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from autumn_admin.dashboard.customer_page import get_customer_for
from autumn_admin.dashboard.environment import current_env
from customers.models import Customer

# One permission per dashboard action (the groups in billing/migrations/0002_roles.py grant them).
EDIT_BALANCE = "billing.adjust_balance"
APPLY_REWARD = "billing.apply_reward"
CUSTOMIZE_PRODUCT = "billing.add_product"
CHANGE_CUSTOMER = "customers.change_customer"
DELETE_CUSTOMER = "customers.delete_customer"
RESTORE_CUSTOMER = "customers.restore_customer"


def require_perm(request: HttpRequest, perm: str) -> None:
    """403 unless the user has `perm` (superusers have every permission)."""
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"Your role doesn't allow this ({perm}).")


def customer_for_action(request: HttpRequest, customer_id: str, perm: str) -> Customer:
    """The live customer of the dashboard's environment that the user may act on with `perm`.

    404 for a customer the user can't see (another environment, deleted), 403 for one they may
    see but not change.
    """
    customer = get_customer_for(current_env(request), customer_id)
    require_perm(request, perm)
    return customer
