from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

CUSTOMER_ID_PATTERN = r"^[a-zA-Z0-9_-]+$"
CUSTOMER_ID_MAX_LENGTH = 255

# A customer's details as people and the API name them: the one list the forms, pages and API read.
DETAIL_FIELDS = {"id": "ID", "name": "Name", "email": "Email", "fingerprint": "Fingerprint", "metadata": "Metadata"}
# Its free-text details (limits in customers/validation.py), and what a search looks through.
TEXT_FIELDS = ("name", "email", "fingerprint")
SEARCHED_FIELDS = ("customer_id", *TEXT_FIELDS)


class Env(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    LIVE = "live", "Live"


class CustomerQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)

    def deleted_before(self, moment):
        """Customers deleted before `moment`: those a purge removes for good."""
        return self.deleted().filter(deleted_at__lt=moment)

    def search(self, text: str):
        """Customers whose id, name, email or fingerprint contains `text`, whatever its case."""
        text = text.strip()
        if not text:
            return self
        if "\x00" in text:
            return self.none()  # no stored text has a NUL, and PostgreSQL refuses to search for one
        match = Q()
        for field in SEARCHED_FIELDS:
            match |= Q(**{f"{field}__icontains": text})
        return self.filter(match)


class Customer(models.Model):
    """A customer of the company using the dashboard, identified by the app's own id."""

    customer_id = models.CharField("ID", max_length=CUSTOMER_ID_MAX_LENGTH)
    env = models.CharField(max_length=8, choices=Env.choices, default=Env.SANDBOX)
    name = models.CharField(max_length=255, blank=True, default="")
    email = models.CharField(max_length=320, blank=True, default="")
    fingerprint = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    stripe_id = models.CharField("Stripe customer", max_length=255, blank=True, default="")
    send_email_receipts = models.BooleanField(default=False)
    stripe_sync_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    has_live_product = models.BooleanField(
        default=False,
        editable=False,
        help_text="Whether a product of the customer is live (active, trialing, past due): kept by billing on every"
        " change of a customer product, for the list's No product filter.",
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("restore_customer", "Can restore a deleted customer"),
            ("manage_api_keys", "Can create and revoke API keys"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["env", "customer_id"],
                condition=Q(deleted_at__isnull=True),
                name="customer_id_unique_per_env_alive",
            ),
            models.CheckConstraint(condition=Q(customer_id__regex=CUSTOMER_ID_PATTERN), name="customer_id_pattern"),
            models.CheckConstraint(condition=Q(env__in=Env.values), name="customer_env_valid"),
        ]
        indexes = [
            models.Index(fields=["env", "email"], name="customer_env_email"),
            models.Index(fields=["env", "name"], name="customer_env_name"),
            models.Index(fields=["env", "-created_at"], name="customer_env_created"),
            models.Index(fields=["stripe_id"], name="customer_stripe_id"),
            # The list's "No product": the few customers without a live product, newest first.
            models.Index(
                fields=["env", "-created_at"],
                condition=Q(has_live_product=False, deleted_at__isnull=True),
                name="customer_no_live_product",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.customer_id

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def display_name(self) -> str:
        return self.name or self.customer_id


class ApiKeyKind(models.TextChoices):
    SECRET = "secret", "Secret key"
    ACCESS = "access", "Customer access token"
    REFRESH = "refresh", "Customer refresh token"


class ApiKey(models.Model):
    """A secret key for the REST API, or a customer's token minted with one (keys.mint): an access token,
    which reaches only that customer's data, or the refresh token that rotates it. Only a hash is stored."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=ApiKeyKind.choices, default=ApiKeyKind.SECRET)
    customer = models.ForeignKey(
        "Customer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tokens",
        help_text="The customer a token is bound to (tokens only).",
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="A token's end (none: until revoked).")
    env = models.CharField(max_length=8, choices=Env.choices)
    prefix = models.CharField(max_length=24, help_text="The first characters, to recognise the key.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(env__in=Env.values), name="apikey_env_valid"),
            models.CheckConstraint(
                condition=Q(kind="secret", customer__isnull=True)
                | Q(kind__in=["access", "refresh"], customer__isnull=False),
                name="apikey_token_has_customer",
            ),
        ]
        indexes = [models.Index(fields=["customer", "revoked_at"], name="apikey_customer_revoked")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first answer to an API POST sent with an Idempotency-Key, replayed on retries."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"


class AuditEntry(models.Model):
    """Append-only record of who changed what. Outlives the customer it describes."""

    created_at = models.DateTimeField(default=timezone.now)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150, help_text="Who acted, as shown to people.")
    action = models.CharField(max_length=64)
    env = models.CharField(max_length=8, choices=Env.choices, blank=True, default="")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    customer_ref = models.CharField(max_length=CUSTOMER_ID_MAX_LENGTH, blank=True, default="")
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=255, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    job_id = models.PositiveBigIntegerField(
        null=True, blank=True, db_index=True, help_text="The bulk job that made this change, if one did."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="audit_customer_time"),
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target_time"),
            models.Index(fields=["-created_at"], name="audit_time"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.customer_ref} at {self.created_at:%Y-%m-%d %H:%M}"


class SavedView(models.Model):
    """A named set of the customers list's filters (its query string). Its owner sees it above the list;
    shared, the whole team does."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    env = models.CharField(max_length=8, choices=Env.choices)
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, blank=True, default="")
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "env", "name"], name="saved_view_unique_name")]

    def __str__(self) -> str:
        return self.name
