"""Cancel and Retry as Django admin actions on jobs (same services and audit rows as the pages)."""

from __future__ import annotations

from django.contrib import admin, messages

from jobs.services import lifecycle
from monitoring.services.audit import record


def _run(modeladmin, request, queryset, action, fn, done_word):
    done, refused = 0, []
    for job in queryset.only("pk", "status"):
        try:
            fn(job.pk, actor=request.user.get_username())
        except lifecycle.IllegalTransition as exc:
            refused.append(f"{str(job.pk)[:8]}: {exc}")
            record(
                action, "job", job.pk, request=request, details={"error": str(exc), "via": "admin"}, status="failure"
            )
            continue
        record(action, "job", job.pk, request=request, details={"from_status": job.status, "via": "admin"})
        done += 1
    if done:
        modeladmin.message_user(request, f"{done} job(s) {done_word}.", messages.SUCCESS)
    for line in refused[:10]:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.action(description="Cancel selected jobs (queued: at once; running: at their next check)")
def cancel_jobs(modeladmin, request, queryset):
    _run(modeladmin, request, queryset, "job_cancel", lifecycle.request_cancel, "cancelled or asked to stop")


@admin.action(description="Retry selected failed or cancelled jobs")
def retry_jobs(modeladmin, request, queryset):
    _run(modeladmin, request, queryset, "job_retry", lifecycle.retry_now, "queued again")
