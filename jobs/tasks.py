"""django-q2 entry points of the jobs app and the tracked job types it registers.

Every function here takes primary keys (or nothing), loads what it needs and
calls one service; each is safe to run twice.
"""

from __future__ import annotations

from jobs.services import backup, exports, lifecycle, retention, tracked
from jobs.services.tracked import register


def run_job(job_id: str) -> str:
    """The django-q2 task behind every tracked job (enqueued by jobs.services.tracked)."""
    return lifecycle.run_job(job_id)


def dispatch_due_jobs() -> int:
    """Per-minute schedule: hand queued retries whose next_retry_at has come to django-q2."""
    return tracked.dispatch_due_jobs()


def sweep_timeouts() -> dict:
    """Per-minute schedule: fail (and retry) running jobs whose worker died."""
    return lifecycle.sweep_timeouts()


def enqueue_retention() -> str | None:
    """Daily schedule: start the retention job unless one is already queued or running."""
    from jobs.models import Job

    if Job.objects.active().filter(job_type=retention.RETENTION_JOB_TYPE).exists():
        return None
    return str(tracked.enqueue(retention.RETENTION_JOB_TYPE, priority=4, max_attempts=3, created_by="schedule").pk)


# --- Tracked job types -------------------------------------------------------------------------------
# Timeouts are "no sign of life" limits for the dead-worker sweep: every one of
# these handlers reports progress at least every few seconds while it works.


@register(exports.EXPORT_JOB_TYPE, timeout=600, label="Export", on_failure=exports.export_abandoned)
def export_handler(ctx, *, export_id: str, destination: str | None = None):
    return exports.run_export(ctx, export_id, destination=destination)


@register(backup.BACKUP_JOB_TYPE, timeout=1800, label="Backup", on_failure=backup.backup_abandoned)
def backup_handler(ctx, *, backup_id: str, destination: str | None = None):
    return backup.run_backup(ctx, backup_id, destination=destination)


@register(backup.RESTORE_JOB_TYPE, timeout=3600, label="Restore", on_failure=backup.restore_abandoned)
def restore_handler(
    ctx, *, restore_id: str, validate_only: bool = False, refusal: str | None = None, cli: bool = False
):
    return backup.run_restore(ctx, restore_id, validate_only=validate_only, refusal=refusal, cli=cli)


@register(retention.RETENTION_JOB_TYPE, timeout=1800, label="Retention cleanup")
def retention_handler(ctx):
    return retention.run_retention(ctx)
