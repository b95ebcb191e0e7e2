from django.conf import settings

from autumn_admin.environment import current_env


def dashboard(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"stripe_connected": bool(settings.STRIPE_SECRET_KEY)}
    return {"current_env": current_env(request), "stripe_connected": bool(settings.STRIPE_SECRET_KEY)}
