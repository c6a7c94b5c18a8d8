"""Jobs, exports and backups pages. Thin: state changes live in jobs/services.

Lists page by keyset on (created_at, id) — `?before=<timestamp>,<id>` — and
never count. Live regions (progress, logs) poll with HTMX only while the thing
they show is still queued or running; the finished partial carries no trigger,
so polling stops by itself.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.db.models import Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.permissions import is_operator, operator_required
from dashboard.regions import htmx_target, querystring
from jobs.choices import BackupStatus, ExportStatus, JobLogLevel, JobStatus, RestoreStatus
from jobs.filters import JobFilter
from jobs.forms import AcknowledgeForm, ExportCreateForm, LegalHoldForm, LogLevelForm, RestoreUploadForm, make_cursor
from jobs.models import BackupJob, ExportJob, Job, RestoreJob
from jobs.services import backup as backup_service
from jobs.services import exports as export_service
from jobs.services import lifecycle
from monitoring.services.audit import record

PAGE_SIZE = 50
LOG_LIMIT = 500
LIVE_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)


def _keyset(qs, before):
    if before:
        moment, pk = before
        qs = qs.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk))
    return qs.order_by("-created_at", "-pk")


def _page(request, qs, before):
    rows = list(_keyset(qs, before)[: PAGE_SIZE + 1])
    next_query = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_query = querystring(request.GET, before=make_cursor(rows[-1].created_at, rows[-1].pk))
    return rows, next_query


def _actor(request) -> str:
    return request.user.get_username()


# --- Jobs ------------------------------------------------------------------------------------------


@require_GET
def job_list(request):
    filterset = JobFilter(request.GET, queryset=Job.objects.all())
    rows, next_query, before = [], None, None
    if filterset.is_valid():
        before = filterset.form.cleaned_data.get("before")
        rows, next_query = _page(request, filterset.qs, before)
    context = {
        "title": "Jobs",
        "filter": filterset,
        "rows": rows,
        "next_query": next_query,
        "first_query": querystring(request.GET, before=None) if before else None,
        "live": any(j.status in LIVE_JOB for j in rows),
        "self_query": querystring(request.GET),
    }
    if htmx_target(request) == "job-results":
        return render(request, "jobs/_job_results.html", context)
    return render(request, "jobs/job_list.html", context)


def _job_context(request, job):
    form = LogLevelForm(request.GET)
    levels = form.levels()
    logs = list(job.logs.filter(level__in=levels).order_by("-timestamp", "-id")[:LOG_LIMIT])
    logs.reverse()
    transitions = list(job.transitions.order_by("transitioned_at", "id"))
    for t in transitions:
        try:
            t.metadata = json.loads(t.metadata_json) if t.metadata_json else None
        except ValueError:
            t.metadata = t.metadata_json
    return {
        "title": f"Job {job.job_type}",
        "job": job,
        "live": job.status in LIVE_JOB,
        "attempts": list(job.attempts.order_by("attempt_number")),
        "transitions": transitions,
        "logs": logs,
        "logs_truncated": len(logs) >= LOG_LIMIT,
        "level_form": form,
        "level": form.cleaned_data.get("level") if form.is_valid() else "",
        "level_choices": JobLogLevel.choices,
        "result_json": json.dumps(job.result, indent=2, sort_keys=True, ensure_ascii=False)
        if job.result is not None
        else None,
        "kwargs_json": json.dumps(job.kwargs, indent=2, sort_keys=True) if job.kwargs else None,
        "can_cancel": job.status in LIVE_JOB and not job.cancel_requested,
        "can_retry": lifecycle.can_transition(job.status, JobStatus.QUEUED, "user"),
        "related": _related_record(job),
    }


def _related_record(job):
    """The export / backup / restore this job works for, to link back to its page."""
    kwargs = job.kwargs or {}
    for key, model, url in (
        ("export_id", ExportJob, "jobs:export_detail"),
        ("backup_id", BackupJob, "jobs:backup_detail"),
        ("restore_id", RestoreJob, "jobs:restore_detail"),
    ):
        if kwargs.get(key) and model.objects.filter(pk=kwargs[key]).exists():
            return {"label": model._meta.verbose_name, "url": reverse(url, args=[kwargs[key]])}
    return None


@require_GET
def job_detail(request, pk):
    job = get_object_or_404(Job, pk=pk)
    context = _job_context(request, job)
    target = htmx_target(request)
    if target == "job-live":
        return render(request, "jobs/_job_live.html", context)
    if target == "job-logs":
        return render(request, "jobs/_job_logs.html", context)
    return render(request, "jobs/job_detail.html", context)


@require_POST
@operator_required
def job_cancel(request, pk):
    job = get_object_or_404(Job, pk=pk)
    try:
        lifecycle.request_cancel(job.pk, actor=_actor(request))
    except lifecycle.IllegalTransition as exc:
        record("job_cancel", "job", job.pk, request=request, details={"error": str(exc)}, status="failure")
        messages.error(request, str(exc))
        return _back_to_job(request, job, status=409)
    job.refresh_from_db()
    record("job_cancel", "job", job.pk, request=request,
           details={"changes": {"status": ["running" if job.status == JobStatus.RUNNING else "queued", job.status]},
                    "cooperative": job.status == JobStatus.RUNNING})  # fmt: skip
    messages.success(
        request,
        "Cancellation requested; the job stops at its next check."
        if job.status == JobStatus.RUNNING
        else "Job cancelled.",
    )
    return _back_to_job(request, job)


@require_POST
@operator_required
def job_retry(request, pk):
    job = get_object_or_404(Job, pk=pk)
    old = job.status
    try:
        job = lifecycle.retry_now(job.pk, actor=_actor(request))
    except lifecycle.IllegalTransition as exc:
        record("job_retry", "job", job.pk, request=request, details={"error": str(exc)}, status="failure")
        messages.error(request, str(exc))
        return _back_to_job(request, job, status=409)
    record("job_retry", "job", job.pk, request=request,
           details={"changes": {"status": [old, JobStatus.QUEUED], "attempt_number": [job.attempt_number - 1,
                                                                                       job.attempt_number]}})  # fmt: skip
    messages.success(request, f"Job queued again (attempt {job.attempt_number}).")
    return _back_to_job(request, job)


def _back_to_job(request, job, status=None):
    url = reverse("jobs:detail", args=[job.pk])
    if status is None:
        return redirect(url)
    # A refused action: show the page with the message, and say so in the status code.
    context = _job_context(request, job)
    return render(request, "jobs/job_detail.html", context, status=status)


# --- Exports ----------------------------------------------------------------------------------------


@require_GET
def export_list(request):
    before = None
    if request.GET.get("before"):
        try:
            from jobs.forms import parse_cursor

            before = parse_cursor(request.GET["before"])
        except ValidationError:
            before = None
    rows, next_query = _page(request, ExportJob.objects.select_related("job"), before)
    context = {
        "title": "Exports",
        "rows": rows,
        "next_query": next_query,
        "first_query": "?" if before else None,
        "live": any(e.status in (ExportStatus.PENDING, ExportStatus.RUNNING) for e in rows),
    }
    if htmx_target(request) == "export-results":
        return render(request, "jobs/_export_results.html", context)
    return render(request, "jobs/export_list.html", context)


@require_http_methods(["GET", "POST"])
def export_create(request):
    data = request.POST if request.method == "POST" else request.GET
    export_type = data.get("export_type") or "events"
    if request.method == "POST" and not is_operator(request.user):
        raise PermissionDenied("Only operators may create exports.")
    filter_errors: list[str] = []
    filters: dict = {}
    if export_type not in ("events", "alerts"):
        filter_errors.append("Only events and alerts can be exported.")
        export_type = "events"
    else:
        try:
            filters = export_service.clean_filters(export_type, data)
        except ValidationError as exc:
            filter_errors = exc.messages
    form = ExportCreateForm(request.POST if request.method == "POST" else None, initial={"export_type": export_type})
    if request.method == "POST" and form.is_valid() and not filter_errors:
        export = export_service.create_export(
            export_type,
            form.cleaned_data["export_format"],
            filters,
            created_by=_actor(request),
            retention_days=form.cleaned_data.get("retention_days"),
            request=request,
        )
        messages.success(request, "Export queued; this page shows its progress.")
        return redirect("jobs:export_detail", pk=export.pk)
    context = {
        "title": f"Export {export_type}",
        "form": form,
        "export_type": export_type,
        "filters": filters,
        "filter_rows": export_service.describe_filters(filters),
        "filter_errors": filter_errors,
        "filter_items": _filter_items(export_type, data),
        "default_days": settings.EXPORT_RETENTION_DAYS,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "jobs/export_create.html", context, status=status)


def _filter_items(export_type, data) -> list[tuple[str, str]]:
    """The filter parameters to carry as hidden fields from the GET form to the POST."""
    names = export_service.EVENT_FILTERS if export_type == "events" else export_service.ALERT_FILTERS
    items = []
    for name in names:
        values = data.getlist(name) if hasattr(data, "getlist") else []
        items.extend((name, v) for v in values if v != "")
    return items


def _export_context(export):
    return {
        "title": "Export",
        "export": export,
        "job": export.job,
        "live": export.status in (ExportStatus.PENDING, ExportStatus.RUNNING),
        "filter_rows": export_service.describe_filters(json.loads(export.filter_params or "{}")),
        "downloadable": _downloadable(export),
        "hold_form": LegalHoldForm(initial={"legal_hold": not export.legal_hold}),
    }


def _downloadable(export) -> bool:
    if export.status != ExportStatus.COMPLETED:
        return False
    try:
        export_service.export_file_path(export)
    except (FileNotFoundError, SuspiciousFileOperation):
        return False
    return True


@require_GET
def export_detail(request, pk):
    export = get_object_or_404(ExportJob.objects.select_related("job"), pk=pk)
    context = _export_context(export)
    if htmx_target(request) == "export-live":
        return render(request, "jobs/_export_live.html", context)
    return render(request, "jobs/export_detail.html", context)


@require_http_methods(["GET", "POST"])
@operator_required
def export_download(request, pk):
    """GET: the sensitivity acknowledgement form. POST with the box ticked: the file."""
    export = get_object_or_404(ExportJob, pk=pk)
    if export.status != ExportStatus.COMPLETED:
        raise Http404("This export has no file to download (yet).")
    try:
        path = export_service.export_file_path(export)
    except SuspiciousFileOperation:
        record("export_downloaded", "export", export.pk, request=request,
               details={"error": "stored path outside the export folder"}, status="failure")  # fmt: skip
        raise Http404("This export's file is not in the export folder and cannot be downloaded here.")
    except FileNotFoundError as exc:
        raise Http404(str(exc))
    form = AcknowledgeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        export_service.record_download(export, user=request.user, request=request)
        response = FileResponse(
            open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename=export_service.download_name(export),
            content_type=export_service.CONTENT_TYPES.get(export.export_format, "application/octet-stream"),
        )
        response["Cache-Control"] = "no-store"
        return response
    status = 400 if request.method == "POST" else 200
    return render(request, "jobs/export_download.html", {"title": "Download export", "export": export, "form": form},
                  status=status)  # fmt: skip


@require_POST
@operator_required
def export_legal_hold(request, pk):
    export = get_object_or_404(ExportJob, pk=pk)
    form = LegalHoldForm(request.POST)
    hold = form.is_valid() and form.cleaned_data["legal_hold"]
    if export_service.set_legal_hold(export, hold, request=request):
        messages.success(
            request,
            "Legal hold set: this export will not expire." if hold else "Legal hold lifted: it expires as scheduled.",
        )
    return redirect("jobs:export_detail", pk=export.pk)


# --- Backups and restores -----------------------------------------------------------------------------


def _backups_context(request, upload_form=None):
    # prefetch, not a join: for a join the planner hashes the whole jobs table (every export,
    # retention run ...) to match a page of backups; jobs_pkey looks up just these.
    backups = list(BackupJob.objects.prefetch_related("job").order_by("-created_at", "-pk")[:PAGE_SIZE])
    restores = list(RestoreJob.objects.prefetch_related("job").order_by("-created_at", "-pk")[:PAGE_SIZE])
    live = any(b.status in (BackupStatus.PENDING, BackupStatus.RUNNING) for b in backups) or any(
        r.status in (RestoreStatus.PENDING, RestoreStatus.VALIDATING, RestoreStatus.RESTORING) for r in restores
    )
    return {
        "title": "Backups",
        "backups": backups,
        "restores": restores,
        "live": live,
        "upload_form": upload_form or RestoreUploadForm(),
        "max_upload": settings.RESTORE_MAX_UPLOAD_BYTES,
        "tables": backup_service.BACKUP_TABLES,
    }


@require_GET
def backups(request):
    context = _backups_context(request)
    if htmx_target(request) == "backup-results":
        return render(request, "jobs/_backup_results.html", context)
    return render(request, "jobs/backups.html", context)


@require_POST
@operator_required
def backup_create(request):
    # Audited as backup_created (or its failure) by the job, with this operator as the actor.
    backup = backup_service.create_backup(created_by=_actor(request))
    messages.success(request, "Backup queued.")
    return redirect("jobs:backup_detail", pk=backup.pk)


@require_GET
def backup_detail(request, pk):
    backup = get_object_or_404(BackupJob.objects.select_related("job"), pk=pk)
    context = {
        "title": "Backup",
        "backup": backup,
        "job": backup.job,
        "live": backup.status in (BackupStatus.PENDING, BackupStatus.RUNNING),
        "downloadable": _backup_downloadable(backup),
        "manifest_tables": (backup.manifest_json or {}).get("tables", [])
        if isinstance(backup.manifest_json, dict)
        else [],
    }
    if htmx_target(request) == "backup-live":
        return render(request, "jobs/_backup_live.html", context)
    return render(request, "jobs/backup_detail.html", context)


def _backup_downloadable(backup) -> bool:
    if backup.status != BackupStatus.COMPLETED:
        return False
    try:
        backup_service.backup_file_path(backup)
    except (FileNotFoundError, SuspiciousFileOperation):
        return False
    return True


@require_GET
@operator_required
def backup_download(request, pk):
    backup = get_object_or_404(BackupJob, pk=pk)
    try:
        path = backup_service.backup_file_path(backup)
    except SuspiciousFileOperation:
        record("backup_downloaded", "backup", backup.pk, request=request,
               details={"error": "stored path outside the backup folder"}, status="failure")  # fmt: skip
        raise Http404("This backup's file is not in the backup folder and cannot be downloaded here.")
    except FileNotFoundError as exc:
        raise Http404(str(exc))
    record("backup_downloaded", "backup", backup.pk, request=request, details={"bytes": backup.file_size_bytes})
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=path.name, content_type="application/zip")  # noqa: SIM115
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@operator_required
def backup_delete(request, pk):
    backup = get_object_or_404(BackupJob, pk=pk)
    if backup.status in (BackupStatus.PENDING, BackupStatus.RUNNING):
        messages.error(request, "A backup that is still being written cannot be deleted.")
        return redirect("jobs:backup_detail", pk=backup.pk)
    backup_service.delete_backup(backup, request=request)
    messages.success(request, "Backup deleted.")
    return redirect("jobs:backups")


def _refuse_upload(request, message: str):
    """An upload refused before it was stored still becomes a failed restore job, with the reason."""
    restore = backup_service.create_restore(None, created_by=_actor(request), request=request, refusal=message)
    messages.error(request, message)
    return redirect("jobs:restore_detail", pk=restore.pk)


@require_POST
@operator_required
def restore_upload(request):
    limit = settings.RESTORE_MAX_UPLOAD_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refuse before Django reads the body: multipart overhead is a few KB at most.
    if declared > limit + 64 * 1024:
        return _refuse_upload(
            request,
            f"The upload is {backup_service._human(declared)}; the limit is {backup_service._human(limit)} "
            "(RESTORE_MAX_UPLOAD_BYTES). Nothing was changed.",
        )
    form = RestoreUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        context = _backups_context(request, upload_form=form)
        return render(request, "jobs/backups.html", context, status=400)
    if backup_service.active_restore_exists():
        form.add_error(None, "Another restore is still running; wait for it to finish.")
        context = _backups_context(request, upload_form=form)
        return render(request, "jobs/backups.html", context, status=409)
    upload = form.cleaned_data["archive"]
    if upload.size > limit:
        return _refuse_upload(
            request,
            f"The file is {backup_service._human(upload.size)}; the limit is {backup_service._human(limit)} "
            "(RESTORE_MAX_UPLOAD_BYTES). Nothing was changed.",
        )
    upload_dir = Path(settings.UPLOAD_DIR)
    upload_dir.mkdir(parents=True, exist_ok=True)
    name = f"restore-{secrets.token_urlsafe(16)}.zip"
    if hasattr(upload, "temporary_file_path"):
        # Big uploads already sit in a temporary file: move it rather than copy a gigabyte again.
        shutil.move(upload.temporary_file_path(), upload_dir / name)
    else:
        with open(upload_dir / name, "wb") as fh:
            for chunk in upload.chunks():
                fh.write(chunk)
    restore = backup_service.create_restore(
        name, created_by=_actor(request), request=request, validate_only=form.cleaned_data["validate_only"]
    )
    messages.success(request, "Archive uploaded; it is checked before anything changes.")
    return redirect("jobs:restore_detail", pk=restore.pk)


@require_GET
def restore_detail(request, pk):
    restore = get_object_or_404(RestoreJob.objects.select_related("job"), pk=pk)
    items = restore.items_restored if isinstance(restore.items_restored, dict) else {}
    context = {
        "title": "Restore",
        "restore": restore,
        "job": restore.job,
        "live": restore.status in (RestoreStatus.PENDING, RestoreStatus.VALIDATING, RestoreStatus.RESTORING),
        "items": sorted(
            items.items(),
            key=lambda kv: backup_service.BACKUP_TABLES.index(kv[0]) if kv[0] in backup_service.BACKUP_TABLES else 99,
        ),  # fmt: skip
    }
    if htmx_target(request) == "restore-live":
        return render(request, "jobs/_restore_live.html", context)
    return render(request, "jobs/restore_detail.html", context)
