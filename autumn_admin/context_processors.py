from django.conf import settings
from django.utils.functional import SimpleLazyObject

from autumn_admin.environment import current_env

# The role a user acts in, told from the permissions the request loads anyway (no groups query).
ROLE_BY_PERMISSION = (
    ("customers.manage_api_keys", "Ops"),
    ("billing.adjust_balance", "Support"),
    ("customers.view_customer", "Viewer"),
)


def role_label(user) -> str:
    if user.is_superuser:
        return "Superuser"
    return next((label for perm, label in ROLE_BY_PERMISSION if user.has_perm(perm)), "No role")


def dashboard(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"stripe_connected": bool(settings.STRIPE_SECRET_KEY)}
    return {
        "current_env": current_env(request),
        "stripe_connected": bool(settings.STRIPE_SECRET_KEY),
        "user_role": SimpleLazyObject(lambda: role_label(request.user)),
    }
