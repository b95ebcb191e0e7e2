"""Bulk jobs: one action over many customers, and one row per customer it touches."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from customers.models import Customer, Env


class BulkJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class BulkJob(models.Model):
    """One bulk action over a selection of an environment's customers, run in the background. Its items are
    the customers it was started on; each is done, skipped or failed exactly once (`BulkJobItem`)."""

    env = models.CharField(max_length=8, choices=Env.choices)
    action = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True, help_text="The action's inputs (feature, amount, ...).")
    reason = models.TextField()
    filter_query = models.CharField(max_length=2000, blank=True, default="", help_text="The list's filters.")
    filter_text = models.CharField(max_length=2000, blank=True, default="", help_text="The filters in words.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=BulkJobStatus.choices, default=BulkJobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of its worker.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["env", "-created_at"], name="bulkjob_env_time")]

    def __str__(self) -> str:
        return f"Job {self.pk}: {self.action} ({self.status})"

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def left(self) -> int:
        return max(0, self.total - self.processed)

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.processed * 100 // self.total

    @property
    def is_finished(self) -> bool:
        return self.status in (BulkJobStatus.DONE, BulkJobStatus.CANCELLED)


class BulkJobItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class BulkJobItem(models.Model):
    """One customer of a job. Its status moves from pending in the same transaction as the customer's change,
    so a job run again after a crash skips what is done and redoes what was not."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL, related_name="+")
    customer_ref = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=8, choices=BulkJobItemStatus.choices, default=BulkJobItemStatus.PENDING)
    reason = models.CharField(max_length=500, blank=True, default="", help_text="Why it was skipped or failed.")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "customer"], name="bulkjobitem_once_per_customer")]
        indexes = [models.Index(fields=["job", "status", "id"], name="bulkjobitem_job_status")]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.customer_ref}: {self.status}"
