"""Daily retention: old GPU samples, logs and finished jobs, and expired exports.

Rows go in batches (RETENTION_BATCH_SIZE per statement, each its own short
transaction) so the cleanup never holds long locks or bloats one huge
transaction, and a cancelled or crashed run keeps what it already deleted.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from jobs.choices import FINISHED_JOB_STATUSES

RETENTION_JOB_TYPE = "retention"


def _delete_in_batches(table: str, time_column: str, cutoff, batch: int, ctx=None) -> int:
    """DELETE rows older than cutoff, `batch` at a time (the BRIN/B-tree on the time column finds them)."""
    total = 0
    sql = f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {time_column} < %s LIMIT %s)"
    while True:
        with connection.cursor() as cur:
            cur.execute(sql, [cutoff, batch])
            n = cur.rowcount
        total += n
        if ctx is not None:
            ctx.heartbeat()
            ctx.check_cancelled()
        if n < batch:
            return total


def delete_finished_jobs(cutoff, batch: int, ctx=None, keep=None) -> int:
    """Finished jobs created before cutoff, with their attempts, logs and transitions.

    Django's cascades live in Python, not in the database, so children go first;
    export/backup/restore rows keep their history with job_id set to NULL.
    """
    total = 0
    statuses = [str(s) for s in FINISHED_JOB_STATUSES]
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                # created_at < cutoff narrows through idx_jobs_status_created_at; completed_at >= created_at always.
                "SELECT id FROM jobs WHERE status = ANY(%s) AND created_at < %s "
                "AND COALESCE(completed_at, created_at) < %s AND id <> ALL(%s) "
                "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
                [statuses, cutoff, cutoff, list(keep or []), batch],
            )
            ids = [r[0] for r in cur.fetchall()]
            if not ids:
                return total
            for table in ("export_jobs", "backup_jobs", "restore_jobs"):
                cur.execute(f"UPDATE {table} SET job_id = NULL WHERE job_id = ANY(%s)", [ids])
            for table in ("job_logs", "job_attempts", "job_transitions"):
                cur.execute(f"DELETE FROM {table} WHERE job_id = ANY(%s)", [ids])
            cur.execute("DELETE FROM jobs WHERE id = ANY(%s)", [ids])
            total += cur.rowcount
        if ctx is not None:
            ctx.heartbeat()
            ctx.check_cancelled()
        if len(ids) < batch:
            return total


STALE_FILE_AGE = dt.timedelta(days=1)


def clean_stale_files(now=None) -> int:
    """Remove what crashed work left behind: hidden `.part` files of exports and backups
    whose writer died, and restore uploads no pending restore still needs."""
    from pathlib import Path

    from jobs.choices import RestoreStatus
    from jobs.models import RestoreJob

    now = now or timezone.now()
    cutoff = (now - STALE_FILE_AGE).timestamp()
    removed = 0
    candidates = []
    for folder in (settings.EXPORT_DIR, settings.BACKUP_DIR):
        folder = Path(folder)
        if folder.is_dir():
            candidates += [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".part")]
    upload_dir = Path(settings.UPLOAD_DIR)
    if upload_dir.is_dir():
        in_use = set(
            RestoreJob.objects.filter(
                status__in=[RestoreStatus.PENDING, RestoreStatus.VALIDATING, RestoreStatus.RESTORING]
            ).values_list("upload_path", flat=True)
        )
        candidates += [p for p in upload_dir.iterdir() if p.name not in in_use]
    for path in candidates:
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def run_retention(ctx=None, now=None) -> dict:
    from jobs.services.exports import expire_exports

    now = now or timezone.now()
    batch = settings.RETENTION_BATCH_SIZE
    limits = {
        "gpu_stats": settings.RETENTION_GPU_STATS_DAYS,
        "logs": settings.RETENTION_LOGS_DAYS,
        "jobs": settings.RETENTION_JOBS_DAYS,
    }
    counts: dict[str, int] = {}

    def step(pct, text):
        if ctx is not None:
            ctx.progress(pct, step=text)

    step(5, "Deleting old GPU samples")
    counts["gpu_stats"] = _delete_in_batches(
        "gpu_stats", "recorded_at", now - dt.timedelta(days=limits["gpu_stats"]), batch, ctx
    )
    step(30, "Deleting old log lines")
    counts["logs"] = _delete_in_batches("logs", "timestamp", now - dt.timedelta(days=limits["logs"]), batch, ctx)
    step(55, "Deleting old finished jobs")
    keep = [ctx.job_id] if ctx is not None else []
    counts["jobs"] = delete_finished_jobs(now - dt.timedelta(days=limits["jobs"]), min(batch, 1000), ctx, keep=keep)
    step(80, "Deleting expired exports")
    counts["exports"] = expire_exports(now)
    step(95, "Removing stale temporary files")
    counts["stale_files"] = clean_stale_files(now)
    if ctx is not None:
        ctx.log(
            "Deleted "
            + ", ".join(f"{n:,} {name}" for name, n in counts.items())
            + f" (limits: gpu_stats {limits['gpu_stats']} d, logs {limits['logs']} d, jobs {limits['jobs']} d).",
        )
    return {"deleted": counts, "limits_days": limits}
