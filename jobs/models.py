"""Tracked background work: jobs with attempts, logs and transitions; exports, backups, restores.

Seed inconsistency resolved here: `jobs.id` is String(36) in the seed while
`job_attempts.job_id` / `job_logs.job_id` are UUID. Every job key is a native
PostgreSQL `uuid` (jobs.id and all three job_id columns), so real foreign keys
exist and malformed ids are rejected by the type itself (README "Data").
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from dashboard.fields import GenRandomUUID, literal_defaults, now_defaults, uuid7
from jobs.choices import (
    FINISHED_JOB_STATUSES,
    AttemptStatus,
    BackupStatus,
    ExportFormat,
    ExportStatus,
    ExportType,
    JobLogLevel,
    JobStatus,
    RestoreStatus,
    TriggeredBy,
)


def _uuid_pk():
    # UUIDv7 from Python; gen_random_uuid() (PostgreSQL 13+) for rows inserted elsewhere.
    return models.UUIDField(primary_key=True, default=uuid7, db_default=GenRandomUUID(), editable=False)


class JobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])

    def running(self):
        return self.filter(status=JobStatus.RUNNING)

    def finished(self):
        return self.filter(status__in=FINISHED_JOB_STATUSES)


class Job(models.Model):
    id = _uuid_pk()
    job_type = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=JobStatus.choices, **literal_defaults(JobStatus.QUEUED))
    queue_name = models.CharField(max_length=100, null=True, blank=True)
    priority = models.IntegerField(**literal_defaults(2))
    created_at = models.DateTimeField(**now_defaults())
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    progress_percent = models.IntegerField(**literal_defaults(0))
    current_step = models.CharField(max_length=255, null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    error_traceback = models.TextField(null=True, blank=True)
    attempt_number = models.IntegerField(**literal_defaults(1))
    max_attempts = models.IntegerField(**literal_defaults(3))
    next_retry_at = models.DateTimeField(null=True, blank=True)
    # Beyond the seed: what to call and with what, so a retry can re-run it.
    kwargs = models.JSONField(null=True, blank=True)
    created_by = models.CharField(max_length=150, null=True, blank=True)
    cancel_requested = models.BooleanField(**literal_defaults(False))
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        db_table = "jobs"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="ck_jobs_status"),
            models.CheckConstraint(
                condition=Q(progress_percent__gte=0, progress_percent__lte=100), name="ck_jobs_progress_percent"
            ),
            models.CheckConstraint(condition=Q(priority__gte=0, priority__lte=4), name="ck_jobs_priority"),
            models.CheckConstraint(condition=Q(attempt_number__gte=1), name="ck_jobs_attempt_number"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="ck_jobs_max_attempts"),
            models.CheckConstraint(
                condition=Q(completed_at__isnull=True) | Q(completed_at__gte=F("created_at")),
                name="ck_jobs_completed_after_created",
            ),
            models.CheckConstraint(
                condition=Q(started_at__isnull=True) | Q(started_at__gte=F("created_at")),
                name="ck_jobs_started_after_created",
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="idx_jobs_status"),
            models.Index(fields=["job_type"], name="idx_jobs_job_type"),
            models.Index(fields=["created_at"], name="idx_jobs_created_at"),
            models.Index(fields=["queue_name"], name="idx_jobs_queue_name"),
            models.Index(fields=["priority"], name="idx_jobs_priority"),
            models.Index(fields=["status", "created_at"], name="idx_jobs_status_created_at"),
            models.Index(fields=["job_type", "status"], name="idx_jobs_job_type_status"),
            BrinIndex(fields=["created_at"], name="ix_jobs_created_at_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.job_type} {str(self.pk)[:8]} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES

    def clean(self):
        errors = {}
        if self.progress_percent is not None and not 0 <= self.progress_percent <= 100:
            errors["progress_percent"] = "Progress must be between 0 and 100."
        if self.priority is not None and not 0 <= self.priority <= 4:
            errors["priority"] = "Priority must be between 0 and 4."
        if self.attempt_number is not None and self.attempt_number < 1:
            errors["attempt_number"] = "Attempt number starts at 1."
        if self.max_attempts is not None and self.max_attempts < 1:
            errors["max_attempts"] = "At least one attempt is needed."
        if self.created_at and self.completed_at and self.completed_at < self.created_at:
            errors["completed_at"] = "A job cannot complete before it was created."
        if self.created_at and self.started_at and self.started_at < self.created_at:
            errors["started_at"] = "A job cannot start before it was created."
        if errors:
            raise ValidationError(errors)


class JobAttempt(models.Model):
    id = _uuid_pk()
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    attempt_number = models.IntegerField(**literal_defaults(1))
    started_at = models.DateTimeField(**now_defaults())
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=AttemptStatus.choices, **literal_defaults(AttemptStatus.STARTED))
    worker_id = models.CharField(max_length=100, null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    error_traceback = models.TextField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "job_attempts"
        ordering = ["attempt_number"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=AttemptStatus.values), name="ck_job_attempts_status"),
            models.CheckConstraint(condition=Q(attempt_number__gte=1), name="ck_job_attempts_attempt_number"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")),
                name="ck_job_attempts_ended_after_started",
            ),
        ]
        indexes = [
            models.Index(fields=["job"], name="idx_job_attempts_job_id"),
            models.Index(fields=["job", "attempt_number"], name="idx_job_attempts_job_attempt"),
            models.Index(fields=["status"], name="idx_job_attempts_status"),
            BrinIndex(fields=["started_at"], name="ix_job_attempts_started_at_brin"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.attempt_number} of {self.job_id} ({self.status})"


class JobLog(models.Model):
    id = _uuid_pk()
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs", db_index=False)
    attempt_number = models.IntegerField(**literal_defaults(1))
    timestamp = models.DateTimeField(**now_defaults())
    level = models.CharField(max_length=10, choices=JobLogLevel.choices, **literal_defaults(JobLogLevel.INFO))
    message = models.TextField()
    context = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "job_logs"
        ordering = ["timestamp"]
        constraints = [
            models.CheckConstraint(condition=Q(level__in=JobLogLevel.values), name="ck_job_logs_level"),
            models.CheckConstraint(condition=Q(attempt_number__gte=1), name="ck_job_logs_attempt_number"),
        ]
        indexes = [
            models.Index(fields=["job"], name="idx_job_logs_job_id"),
            models.Index(fields=["job", "attempt_number"], name="idx_job_logs_job_attempt"),
            models.Index(fields=["level"], name="idx_job_logs_level"),
            models.Index(fields=["job", "timestamp"], name="idx_job_logs_job_timestamp"),
            BrinIndex(fields=["timestamp"], name="ix_job_logs_timestamp_brin"),
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"


class JobTransition(models.Model):
    id = _uuid_pk()
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="transitions", db_index=False)
    from_status = models.CharField(max_length=50)
    to_status = models.CharField(max_length=50)
    transitioned_at = models.DateTimeField(**now_defaults())
    triggered_by = models.CharField(max_length=50, choices=TriggeredBy.choices, **literal_defaults(TriggeredBy.WORKER))
    metadata_json = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "job_transitions"
        ordering = ["transitioned_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(triggered_by__in=TriggeredBy.values), name="ck_job_transitions_triggered_by"
            ),
        ]
        indexes = [
            models.Index(fields=["job"], name="idx_job_transitions_job_id"),
            models.Index(fields=["transitioned_at"], name="idx_job_transitions_transitioned_at"),
            models.Index(fields=["job", "transitioned_at"], name="idx_job_transitions_job_id_transitioned_at"),
        ]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status} ({self.triggered_by})"


def default_expires_at():
    return timezone.now() + dt.timedelta(days=settings.EXPORT_RETENTION_DAYS)


class ExportJobQuerySet(models.QuerySet):
    def expired(self, now=None):
        return self.filter(expires_at__lt=now or timezone.now(), legal_hold=False)


class ExportJob(models.Model):
    id = _uuid_pk()
    status = models.CharField(max_length=20, choices=ExportStatus.choices, **literal_defaults(ExportStatus.PENDING))
    export_type = models.CharField(max_length=50, choices=ExportType.choices)
    export_format = models.CharField(max_length=20, choices=ExportFormat.choices, **literal_defaults(ExportFormat.CSV))
    total_items = models.IntegerField(null=True, blank=True)
    processed_items = models.IntegerField(**literal_defaults(0))
    progress_percent = models.IntegerField(**literal_defaults(0))
    current_step = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(**now_defaults())
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    estimated_completion = models.DateTimeField(null=True, blank=True)
    output_path = models.CharField(max_length=512, null=True, blank=True)
    output_size_bytes = models.BigIntegerField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    filter_params = models.TextField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        default=default_expires_at,
        db_default=ExpressionWrapper(Now() + Value(dt.timedelta(days=7)), output_field=models.DateTimeField()),
    )
    download_count = models.IntegerField(**literal_defaults(0))
    last_downloaded_at = models.DateTimeField(null=True, blank=True)
    sensitivity_acknowledged = models.BooleanField(**literal_defaults(False))
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    retention_days = models.IntegerField(null=True, blank=True)
    legal_hold = models.BooleanField(**literal_defaults(False))
    compliance_metadata = models.JSONField(null=True, blank=True)
    # Beyond the seed: the tracked job doing the work and who asked for it.
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.CharField(max_length=150, null=True, blank=True)

    objects = ExportJobQuerySet.as_manager()

    class Meta:
        db_table = "export_jobs"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ExportStatus.values), name="ck_export_jobs_status"),
            models.CheckConstraint(
                condition=Q(progress_percent__gte=0, progress_percent__lte=100), name="ck_export_jobs_progress_percent"
            ),
            models.CheckConstraint(condition=Q(processed_items__gte=0), name="ck_export_jobs_processed_items"),
            models.CheckConstraint(
                condition=Q(total_items__isnull=True) | Q(total_items__gte=0), name="ck_export_jobs_total_items"
            ),
            models.CheckConstraint(
                condition=Q(output_size_bytes__isnull=True) | Q(output_size_bytes__gte=0),
                name="ck_export_jobs_output_size_bytes",
            ),
            models.CheckConstraint(condition=Q(download_count__gte=0), name="ck_export_jobs_download_count"),
            models.CheckConstraint(
                condition=Q(retention_days__isnull=True) | Q(retention_days__gt=0), name="ck_export_jobs_retention_days"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="idx_export_jobs_status"),
            models.Index(fields=["export_type"], name="idx_export_jobs_export_type"),
            models.Index(fields=["created_at"], name="idx_export_jobs_created_at"),
            models.Index(fields=["status", "created_at"], name="idx_export_jobs_status_created_at"),
            models.Index(fields=["expires_at"], name="idx_export_jobs_expires_at"),
            models.Index(fields=["legal_hold"], name="idx_export_jobs_legal_hold"),
        ]

    def __str__(self) -> str:
        return f"{self.export_type} export ({self.export_format}, {self.status})"

    def clean(self):
        if self.retention_days is not None and self.retention_days <= 0:
            raise ValidationError({"retention_days": "Retention must be at least one day."})


class BackupJob(models.Model):
    id = _uuid_pk()
    status = models.CharField(max_length=20, choices=BackupStatus.choices, **literal_defaults(BackupStatus.PENDING))
    total_tables = models.IntegerField(**literal_defaults(8))
    completed_tables = models.IntegerField(**literal_defaults(0))
    progress_percent = models.IntegerField(**literal_defaults(0))
    current_step = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(**now_defaults())
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    file_path = models.CharField(max_length=512, null=True, blank=True)
    file_size_bytes = models.BigIntegerField(null=True, blank=True)
    manifest_json = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.CharField(max_length=150, null=True, blank=True)

    class Meta:
        db_table = "backup_jobs"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=BackupStatus.values), name="ck_backup_jobs_status"),
            models.CheckConstraint(
                condition=Q(progress_percent__gte=0, progress_percent__lte=100), name="ck_backup_jobs_progress_percent"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="idx_backup_jobs_status"),
            models.Index(fields=["created_at"], name="idx_backup_jobs_created_at"),
        ]

    def __str__(self) -> str:
        return f"backup {str(self.pk)[:8]} ({self.status})"


class RestoreJob(models.Model):
    id = _uuid_pk()
    status = models.CharField(max_length=20, choices=RestoreStatus.choices, **literal_defaults(RestoreStatus.PENDING))
    backup_id = models.CharField(max_length=64, null=True, blank=True)
    backup_created_at = models.DateTimeField(null=True, blank=True)
    total_tables = models.IntegerField(**literal_defaults(8))
    completed_tables = models.IntegerField(**literal_defaults(0))
    progress_percent = models.IntegerField(**literal_defaults(0))
    current_step = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(**now_defaults())
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    items_restored = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    upload_path = models.CharField(max_length=512, null=True, blank=True)
    created_by = models.CharField(max_length=150, null=True, blank=True)

    class Meta:
        db_table = "restore_jobs"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RestoreStatus.values), name="ck_restore_jobs_status"),
            models.CheckConstraint(
                condition=Q(progress_percent__gte=0, progress_percent__lte=100), name="ck_restore_jobs_progress_percent"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="idx_restore_jobs_status"),
            models.Index(fields=["created_at"], name="idx_restore_jobs_created_at"),
        ]

    def __str__(self) -> str:
        return f"restore {str(self.pk)[:8]} ({self.status})"
