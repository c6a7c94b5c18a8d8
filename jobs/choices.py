from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class AttemptStatus(models.TextChoices):
    STARTED = "started", "Started"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class JobLogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class TriggeredBy(models.TextChoices):
    WORKER = "worker", "Worker"
    USER = "user", "User"
    TIMEOUT = "timeout", "Timeout"
    RETRY = "retry", "Retry"
    SYSTEM = "system", "System"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class ExportType(models.TextChoices):
    EVENTS = "events", "Events"
    ALERTS = "alerts", "Alerts"
    FULL_BACKUP = "full_backup", "Full backup"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    ZIP = "zip", "ZIP (CSV inside)"
    XLSX = "xlsx", "Excel (XLSX)"


class BackupStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class RestoreStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VALIDATING = "validating", "Validating"
    RESTORING = "restoring", "Restoring"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
