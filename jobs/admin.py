"""Admin for tracked jobs and the export / backup / restore records they drive.

Attempts, logs and transitions are the job's history: shown read-only under
the job and editable nowhere but the job runner (transitions not even there).
"""

from __future__ import annotations

from django.contrib import admin

from dashboard.admin_base import ReadOnlyModelAdmin, ReadOnlyTabularInline, WatchpostModelAdmin, recent_filter
from jobs.admin_actions import cancel_jobs, retry_jobs
from jobs.models import BackupJob, ExportJob, Job, JobAttempt, JobLog, JobTransition, RestoreJob


class JobAttemptInline(ReadOnlyTabularInline):
    model = JobAttempt
    fields = ("attempt_number", "status", "started_at", "ended_at", "worker_id", "error_message")
    readonly_fields = fields


class JobTransitionInline(ReadOnlyTabularInline):
    model = JobTransition
    fields = ("transitioned_at", "from_status", "to_status", "triggered_by", "metadata_json")
    readonly_fields = fields


class JobLogInline(ReadOnlyTabularInline):
    model = JobLog
    fields = ("timestamp", "attempt_number", "level", "message")
    readonly_fields = fields


@admin.register(Job)
class JobAdmin(WatchpostModelAdmin):
    list_display = (
        "id",
        "job_type",
        "status",
        "priority",
        "progress_percent",
        "attempt_number",
        "max_attempts",
        "created_at",
        "completed_at",
        "created_by",
    )
    # recent_filter, not date_hierarchy: drawing the hierarchy's links reads every job.
    list_filter = ("status", "cancel_requested", recent_filter("created_at", "created"))
    # Job types are a handful of registered names: an exact match uses idx_jobs_job_type.
    search_fields = ("job_type__exact", "created_by__exact")
    id_search_fields = ("id",)
    search_help_text = "A job id, or an exact job type (e.g. export) or creator."
    readonly_fields = ("id", "heartbeat_at")
    inlines = [JobAttemptInline, JobTransitionInline, JobLogInline]
    actions = [cancel_jobs, retry_jobs]


@admin.register(JobAttempt)
class JobAttemptAdmin(WatchpostModelAdmin):
    list_display = ("id", "job", "attempt_number", "status", "started_at", "ended_at", "worker_id")
    list_filter = ("status", recent_filter("started_at", "started"))
    list_select_related = ("job",)
    # Newest first through the primary key: started_at has only a BRIN index, which cannot
    # serve ORDER BY ... LIMIT, so the model's ordering would sort the whole table.
    ordering = ("-id",)
    raw_id_fields = ("job",)
    id_search_fields = ("id", "job")
    search_help_text = "An attempt id or a job id."


@admin.register(JobLog)
class JobLogAdmin(WatchpostModelAdmin):
    list_display = ("timestamp", "job", "attempt_number", "level", "message")
    list_filter = ("level", recent_filter("timestamp"))
    list_select_related = ("job",)
    # Newest first through the primary key (rows are appended in time order): timestamp has
    # only a BRIN index, which cannot serve ORDER BY ... LIMIT.
    ordering = ("-id",)
    raw_id_fields = ("job",)
    id_search_fields = ("job",)
    search_help_text = "A job id."


@admin.register(JobTransition)
class JobTransitionAdmin(ReadOnlyModelAdmin):
    list_display = ("transitioned_at", "job", "from_status", "to_status", "triggered_by")
    list_filter = ("triggered_by", recent_filter("transitioned_at"))
    list_select_related = ("job",)
    id_search_fields = ("job",)
    search_help_text = "A job id."


@admin.register(ExportJob)
class ExportJobAdmin(WatchpostModelAdmin):
    list_display = (
        "id",
        "export_type",
        "export_format",
        "status",
        "progress_percent",
        "created_at",
        "expires_at",
        "legal_hold",
        "download_count",
        "created_by",
    )
    list_filter = ("status", "export_type", "export_format", "legal_hold", "sensitivity_acknowledged")
    date_hierarchy = "created_at"
    raw_id_fields = ("job",)
    id_search_fields = ("id",)
    readonly_fields = ("id",)


@admin.register(BackupJob)
class BackupJobAdmin(WatchpostModelAdmin):
    list_display = (
        "id",
        "status",
        "progress_percent",
        "completed_tables",
        "total_tables",
        "created_at",
        "file_size_bytes",
    )
    list_filter = ("status",)
    date_hierarchy = "created_at"
    raw_id_fields = ("job",)
    id_search_fields = ("id",)
    readonly_fields = ("id",)


@admin.register(RestoreJob)
class RestoreJobAdmin(WatchpostModelAdmin):
    list_display = ("id", "status", "backup_id", "progress_percent", "completed_tables", "total_tables", "created_at")
    list_filter = ("status",)
    date_hierarchy = "created_at"
    raw_id_fields = ("job",)
    id_search_fields = ("id",)
    readonly_fields = ("id",)
