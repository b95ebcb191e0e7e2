"""Who may do what on the dashboard: the permission names, the checks views make, and what templates
ask (`can.<ability>`) to hide the controls a user may not use."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from autumn_admin.dashboard.customer_lookup import get_customer_for
from autumn_admin.dashboard.environment import current_env
from customers.models import Customer

# The permissions the dashboard checks: viewing, and one per action (the groups in
# billing/migrations/0002_roles.py grant them).
VIEW_CUSTOMER = "customers.view_customer"
EDIT_BALANCE = "billing.adjust_balance"
APPLY_REWARD = "billing.apply_reward"
CUSTOMIZE_PRODUCT = "billing.add_product"
CHANGE_PLAN = "billing.change_customerproduct"  # attach, cancel, uncancel
CREATE_ENTITY = "billing.add_entity"
DELETE_ENTITY = "billing.delete_entity"
CHANGE_CUSTOMER = "customers.change_customer"
DELETE_CUSTOMER = "customers.delete_customer"
RESTORE_CUSTOMER = "customers.restore_customer"
MANAGE_API_KEYS = "customers.manage_api_keys"
VIEW_BULK_JOB = "billing.view_bulkjob"
RUN_BULK_JOB = "billing.add_bulkjob"  # start a bulk action on the customers list (Ops)
CANCEL_BULK_JOB = "billing.change_bulkjob"
RECORD_USAGE = "billing.adjust_balance"  # Record Usage on a balance row: Support and Ops, who edit balances
CHECK_BALANCE = "billing.adjust_balance"  # Check Balance on a balance row: the same people (it is audited)
CREATE_CUSTOMER = "customers.change_customer"  # Create Customer on the list: Ops, who change customers' details
MANAGE_INVOICE = "billing.change_invoice"  # void, refund, credit (Ops)
SHARE_VIEW = "billing.add_bulkjob"  # share a saved view with the team: Ops, as they run what it selects

# What templates ask: `{% if can.adjust_balance %}` shows the control of that permission.
ABILITIES = {
    "adjust_balance": EDIT_BALANCE,
    "change_customer": CHANGE_CUSTOMER,
    "apply_reward": APPLY_REWARD,
    "delete_customer": DELETE_CUSTOMER,
    "customize_product": CUSTOMIZE_PRODUCT,
    "change_plan": CHANGE_PLAN,
    "create_entity": CREATE_ENTITY,
    "delete_entity": DELETE_ENTITY,
    "restore_customer": RESTORE_CUSTOMER,
    "manage_api_keys": MANAGE_API_KEYS,
    "run_bulk_job": RUN_BULK_JOB,
    "cancel_bulk_job": CANCEL_BULK_JOB,
    "share_view": SHARE_VIEW,
    "record_usage": RECORD_USAGE,
    "check_balance": CHECK_BALANCE,
    "create_customer": CREATE_CUSTOMER,
    "manage_invoice": MANAGE_INVOICE,
}


def user_can(request: HttpRequest | None) -> dict[str, bool]:
    """Which controls the person sees: ability → allowed (all False without a logged-in user)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return dict.fromkeys(ABILITIES, False)
    return {ability: user.has_perm(perm) for ability, perm in ABILITIES.items()}


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
