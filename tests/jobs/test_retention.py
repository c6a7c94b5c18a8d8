import datetime as dt

import pytest
from django.utils import timezone
from django_q.models import Schedule

from jobs import schedules, tasks
from jobs.choices import JobStatus
from jobs.models import ExportJob, Job, JobAttempt, JobLog, JobTransition
from jobs.services import retention
from monitoring.models import GpuStat, Log
from tests import factories

pytestmark = pytest.mark.django_db


def _ago(days):
    return timezone.now() - dt.timedelta(days=days)


def _finished_job(days, status=JobStatus.COMPLETED):
    job = factories.JobFactory(status=status, created_at=_ago(days), completed_at=_ago(days) + dt.timedelta(minutes=1))
    factories.JobAttemptFactory(job=job)
    factories.JobLogFactory(job=job)
    factories.JobTransitionFactory(job=job)
    return job


def test_retention_deletes_old_rows_in_batches_and_reports_counts(settings):
    settings.RETENTION_BATCH_SIZE = 100  # several batches
    for _ in range(3):
        GpuStat.objects.bulk_create([GpuStat(recorded_at=_ago(31), gpu_index=0) for _ in range(100)])
    recent_gpu = factories.GpuStatFactory(recorded_at=_ago(29))
    factories.LogFactory.create_batch(5, timestamp=_ago(8))
    recent_log = factories.LogFactory(timestamp=_ago(6))
    old_job = _finished_job(31)
    old_failed = _finished_job(40, JobStatus.FAILED)
    young_job = _finished_job(10)
    old_running = factories.JobFactory(status=JobStatus.RUNNING, created_at=_ago(40), started_at=_ago(40))
    backup = factories.BackupJobFactory(job=old_job)
    expired = factories.ExportJobFactory(expires_at=_ago(1))
    held = factories.ExportJobFactory(expires_at=_ago(1), legal_hold=True)

    result = retention.run_retention()

    assert result["deleted"] == {"gpu_stats": 300, "logs": 5, "jobs": 2, "exports": 1, "stale_files": 0}
    assert list(GpuStat.objects.values_list("pk", flat=True)) == [recent_gpu.pk]
    assert list(Log.objects.filter(timestamp__lt=_ago(7)).values_list("pk", flat=True)) == []
    assert Log.objects.filter(pk=recent_log.pk).exists()
    assert set(Job.objects.values_list("pk", flat=True)) == {young_job.pk, old_running.pk}
    for model in (JobAttempt, JobLog, JobTransition):
        assert not model.objects.filter(job_id__in=[old_job.pk, old_failed.pk]).exists()
    backup.refresh_from_db()
    assert backup.job_id is None  # the backup's own history stays
    assert not ExportJob.objects.filter(pk=expired.pk).exists()
    assert ExportJob.objects.filter(pk=held.pk).exists()


def test_retention_limits_are_configurable(settings):
    settings.RETENTION_LOGS_DAYS = 2
    factories.LogFactory(timestamp=_ago(3))
    assert retention.run_retention()["deleted"]["logs"] == 1


def test_retention_runs_as_a_tracked_job(django_capture_on_commit_callbacks):
    factories.LogFactory(timestamp=_ago(30))
    with django_capture_on_commit_callbacks(execute=True):
        job_id = tasks.enqueue_retention()
    job = Job.objects.get(pk=job_id)
    assert job.job_type == "retention" and job.status == JobStatus.COMPLETED
    assert job.result["deleted"]["logs"] == 1
    assert job.logs.filter(message__startswith="Deleted").exists()


def test_retention_is_not_started_twice():
    factories.JobFactory(job_type="retention", status=JobStatus.RUNNING)
    assert tasks.enqueue_retention() is None


def test_ensure_schedules_is_idempotent():
    schedules.ensure_schedules()
    schedules.ensure_schedules()
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {"jobs-dispatch-due", "jobs-timeout-sweep", "jobs-retention"} <= names
    assert Schedule.objects.filter(name="jobs-timeout-sweep").count() == 1
    assert Schedule.objects.get(name="jobs-retention").schedule_type == Schedule.DAILY


def test_retention_removes_stale_part_files_and_unused_uploads(settings):
    import os
    from pathlib import Path

    from jobs.choices import RestoreStatus

    old = (timezone.now() - dt.timedelta(days=2)).timestamp()
    files = {}
    for key, folder, name in [
        ("export_part", settings.EXPORT_DIR, ".events-x.csv.ab12.part"),
        ("backup_part", settings.BACKUP_DIR, ".watchpost-backup.zip.cd34.part"),
        ("export_done", settings.EXPORT_DIR, "events-x.csv"),
        ("upload_old", settings.UPLOAD_DIR, "restore-old.zip"),
        ("upload_in_use", settings.UPLOAD_DIR, "restore-busy.zip"),
    ]:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / name
        path.write_bytes(b"x")
        os.utime(path, (old, old))
        files[key] = path
    fresh = Path(settings.EXPORT_DIR) / ".events-y.csv.ef56.part"
    fresh.write_bytes(b"x")
    factories.RestoreJobFactory(status=RestoreStatus.VALIDATING, upload_path="restore-busy.zip")
    assert retention.clean_stale_files() == 3
    assert not files["export_part"].exists() and not files["backup_part"].exists() and not files["upload_old"].exists()
    assert files["export_done"].exists() and files["upload_in_use"].exists() and fresh.exists()
