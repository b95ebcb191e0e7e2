from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers billing's system checks, and connects billing's answers to the customers' signals.
        from billing import checks, receivers  # noqa: F401
