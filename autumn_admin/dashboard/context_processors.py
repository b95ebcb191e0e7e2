"""What every dashboard page's template can read: the environment shown, its Stripe connection, the
user's role and what the user may do (`can`)."""

from django.utils.functional import SimpleLazyObject

from autumn_admin.dashboard.environment import current_env
from autumn_admin.dashboard.permissions import EDIT_BALANCE, MANAGE_API_KEYS, VIEW_CUSTOMER, user_can
from billing.stripe_io.config import is_configured
from customers.models import Env

# The role a user acts in, told from the permissions the request loads anyway (no groups query).
ROLE_BY_PERMISSION = (
    (MANAGE_API_KEYS, "Ops"),
    (EDIT_BALANCE, "Support"),
    (VIEW_CUSTOMER, "Viewer"),
)


def role_label(user) -> str:
    if user.is_superuser:
        return "Superuser"
    return next((label for perm, label in ROLE_BY_PERMISSION if user.has_perm(perm)), "No role")


def dashboard(request):
    """`stripe_connected` is about the environment the dashboard shows: each has its own Stripe key."""
    env = current_env(request) if hasattr(request, "session") else Env.SANDBOX
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"stripe_connected": is_configured(env)}
    return {
        "current_env": env,
        "stripe_connected": is_configured(env),
        "user_role": SimpleLazyObject(lambda: role_label(request.user)),
        "can": SimpleLazyObject(lambda: user_can(request)),
    }
