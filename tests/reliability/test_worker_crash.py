"""kill -9 of the django-q2 cluster in the middle of an export, a backup and a restore.

A real `manage.py qcluster` runs the real handlers on the test database; when
the work is observably half done (a temporary file growing, a COPY into a
restored table in progress) the whole process group gets SIGKILL. Then the
timeout sweep — the same function the per-minute schedule runs — must find the
dead attempt: attempt failed, transition `running → failed` by `timeout`, and a
retry queued while attempts remain (failed for good after `max_attempts`). No
half-written file may ever be offered for download, and a killed restore must
leave every table exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from jobs.choices import AttemptStatus, BackupStatus, ExportStatus, JobStatus, RestoreStatus, TriggeredBy
from jobs.models import Job, JobAttempt, RestoreJob
from jobs.services import backup as backup_service
from jobs.services import exports as export_service
from jobs.services import lifecycle, tracked
from jobs.services.retention import clean_stale_files
from tests.reliability.conftest import wait_for
from tests.reliability.data import seed_events, table_checksums

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def _growing_part_file(folder: Path, min_bytes: int, exclude: set[str] = frozenset()):
    """The temporary file of a write in progress (hidden name ending in .part), once it holds data."""
    for p in _files(folder):
        try:
            if p.name.endswith(".part") and p.name not in exclude and p.stat().st_size >= min_bytes:
                return p
        except FileNotFoundError:
            pass
    return None


def _job_running(job_id) -> bool:
    return Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists()


def _wait_half_done(job, predicate, what: str, timeout: float = 60):
    """Poll until `predicate()` sees the work half done; fail at once if the attempt ends first."""
    attempt = Job.objects.values_list("attempt_number", flat=True).get(pk=job.pk)

    def check():
        hit = predicate()
        if hit:
            return hit
        ended = JobAttempt.objects.filter(job_id=job.pk, attempt_number=attempt).exclude(status=AttemptStatus.STARTED)
        for status, error in ended.values_list("status", "error_message"):
            pytest.fail(f"attempt {attempt} of the {what} ended ({status}: {error}) before it could be killed half-way")
        return None

    hit = wait_for(check, timeout, 0.005, f"the {what} to be half done")
    assert _job_running(job.pk), f"the {what} finished before it could be killed: give it more rows"
    return hit


def _assert_killed_attempt_swept(job, *, retried: bool):
    """The sweep failed attempt 1 as a timeout and queued attempt 2 (or left the job failed)."""
    job.refresh_from_db()
    attempt = JobAttempt.objects.get(job=job, attempt_number=1)
    assert attempt.status == AttemptStatus.FAILED
    assert attempt.ended_at is not None
    assert "no longer running" in attempt.error_message
    steps = list(
        job.transitions.order_by("transitioned_at", "id").values_list("from_status", "to_status", "triggered_by")
    )
    assert (JobStatus.RUNNING, JobStatus.FAILED, TriggeredBy.TIMEOUT) in steps
    if retried:
        assert steps[-1] == (JobStatus.FAILED, JobStatus.QUEUED, TriggeredBy.RETRY)
        assert job.status == JobStatus.QUEUED
        assert job.attempt_number == 2
        assert job.next_retry_at is not None and job.next_retry_at > timezone.now()
    else:
        assert steps[-1] == (JobStatus.RUNNING, JobStatus.FAILED, TriggeredBy.TIMEOUT)
        assert job.status == JobStatus.FAILED
        assert job.next_retry_at is None
    return job


# --- export ---------------------------------------------------------------------------------------------

EXPORT_ROWS = 30_000


def _kill_mid_export(worker, file_dirs, job, old_files: set[str] = frozenset()) -> Path:
    """SIGKILL the cluster once the export's temporary file (not one in `old_files`) holds data."""
    folder = file_dirs["EXPORT_DIR"]
    part = _wait_half_done(job, lambda: _growing_part_file(folder, 64 * 1024, old_files), "export")
    worker.kill()
    return part


def test_killed_export_is_retried_then_failed_and_never_offers_a_partial_file(start_worker, file_dirs, operator_client):
    seed_events(EXPORT_ROWS, text_len=1024)
    worker = start_worker()
    export = export_service.create_export("events", "json", {}, created_by="olivia_operator")
    job = export.job
    assert job.max_attempts == 2
    url = reverse("jobs:export_download", args=[export.pk])

    # Attempt 1 dies half-way: the sweep fails it as a timeout and queues attempt 2.
    part = _kill_mid_export(worker, file_dirs, job)
    assert [p.name for p in _files(file_dirs["EXPORT_DIR"])] == [part.name]  # only the temporary name
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 1}
    _assert_killed_attempt_swept(job, retried=True)
    export.refresh_from_db()
    assert export.status != ExportStatus.COMPLETED
    assert export.output_path is None
    assert operator_client.get(url).status_code == 404
    assert operator_client.post(url, {"acknowledge": "on"}).status_code == 404
    assert url not in operator_client.get(reverse("jobs:export_detail", args=[export.pk])).content.decode()

    # Attempt 2, handed to a fresh cluster by the dispatcher, dies too: no attempts left, failed for good.
    worker = start_worker()
    left_over = {p.name for p in _files(file_dirs["EXPORT_DIR"])}
    assert tracked.dispatch_due_jobs(now=job.next_retry_at + dt.timedelta(seconds=1)) == 1
    _kill_mid_export(worker, file_dirs, job, left_over)
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.attempt_number == 2
    assert list(job.attempts.values_list("attempt_number", "status")) == [
        (1, AttemptStatus.FAILED),
        (2, AttemptStatus.FAILED),
    ]
    export.refresh_from_db()
    status_after_final_failure = export.status
    assert export.output_path is None
    assert operator_client.post(url, {"acknowledge": "on"}).status_code == 404
    assert all(p.name.startswith(".") and p.name.endswith(".part") for p in _files(file_dirs["EXPORT_DIR"]))

    # The operator's Retry runs it to the end (here, in-process): now, and only now, there is a file.
    lifecycle.retry_now(job.pk, actor="olivia_operator")
    assert lifecycle.run_job(job.pk) == "completed"
    export.refresh_from_db()
    assert export.status == ExportStatus.COMPLETED
    assert export.processed_items == EXPORT_ROWS
    response = operator_client.post(url, {"acknowledge": "on"})
    assert response.status_code == 200
    assert len(json.loads(b"".join(response.streaming_content))) == EXPORT_ROWS

    # The killed attempts' temporary files do not pile up: the daily retention removes them once stale.
    assert clean_stale_files(now=timezone.now() + dt.timedelta(days=2)) == 2
    assert [p.name for p in _files(file_dirs["EXPORT_DIR"])] == [export.output_path]

    # A dead export with no attempts left must not stay "running" (its page polling) until someone retries.
    assert status_after_final_failure == ExportStatus.FAILED, (
        f"the export stayed {status_after_final_failure!r} after its job failed for good"
    )


# --- backup ---------------------------------------------------------------------------------------------


BACKUP_ROWS = 20_000


def _kill_mid_backup(worker, file_dirs, job, old_files: set[str] = frozenset()) -> Path:
    folder = file_dirs["BACKUP_DIR"]
    part = _wait_half_done(job, lambda: _growing_part_file(folder, 1024, old_files), "backup")
    worker.kill()
    return part


def test_killed_backup_is_retried_then_failed_and_never_offers_a_partial_archive(
    start_worker, file_dirs, operator_client
):
    seed_events(BACKUP_ROWS, text_len=1024)
    worker = start_worker()
    backup = backup_service.create_backup(created_by="olivia_operator")
    job = backup.job
    assert job.max_attempts == 2
    url = reverse("jobs:backup_download", args=[backup.pk])

    part = _kill_mid_backup(worker, file_dirs, job)
    assert [p.name for p in _files(file_dirs["BACKUP_DIR"])] == [part.name]
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 1}
    _assert_killed_attempt_swept(job, retried=True)
    backup.refresh_from_db()
    assert backup.status != BackupStatus.COMPLETED
    assert backup.file_path is None
    assert operator_client.get(url).status_code == 404

    worker = start_worker()
    left_over = {p.name for p in _files(file_dirs["BACKUP_DIR"])}
    assert tracked.dispatch_due_jobs(now=job.next_retry_at + dt.timedelta(seconds=1)) == 1
    _kill_mid_backup(worker, file_dirs, job, left_over)
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.attempt_number == 2
    backup.refresh_from_db()
    status_after_final_failure = backup.status
    assert backup.file_path is None
    assert operator_client.get(url).status_code == 404

    lifecycle.retry_now(job.pk, actor="olivia_operator")
    assert lifecycle.run_job(job.pk) == "completed"
    backup.refresh_from_db()
    assert backup.status == BackupStatus.COMPLETED
    assert {t["name"]: t["rows"] for t in backup.manifest_json["tables"]}["events"] == BACKUP_ROWS
    response = operator_client.get(url)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        assert zf.testzip() is None
        assert "manifest.json" in zf.namelist()

    assert clean_stale_files(now=timezone.now() + dt.timedelta(days=2)) == 2
    assert [p.name for p in _files(file_dirs["BACKUP_DIR"])] == [backup.file_path]

    # Otherwise the backup shows "running" (and the Delete button refuses it) until someone retries.
    assert status_after_final_failure == BackupStatus.FAILED, (
        f"the backup stayed {status_after_final_failure!r} after its job failed for good"
    )


# --- restore --------------------------------------------------------------------------------------------


def _restore_copy_in_progress() -> bool:
    """A restore's COPY … FROM STDIN is running: the tables are truncated and half reloaded in its transaction."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'active' AND query LIKE 'COPY %%FROM STDIN%%'"
        )
        return cur.fetchone()[0] > 0


def _other_backends() -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cur.fetchone()[0]


def test_killed_restore_leaves_every_table_as_it_was(worker, file_dirs, operator_client):
    seed_events(12_000, text_len=1024, detections=True)
    archive = file_dirs["UPLOAD_DIR"] / "restore-rel.zip"
    backup_service.write_backup(archive)
    # The database moves on after the backup, so a restore (complete or partial) would show.
    with connection.cursor() as cur:
        cur.execute("DELETE FROM event_detections WHERE event_id % 3 = 0")
        cur.execute("UPDATE events SET reviewed = NOT reviewed, notes = 'after the backup' WHERE id % 5 = 0")
        cur.execute("INSERT INTO cameras (id, name, folder_path, status, created_at) "
                    "VALUES ('late_cam', 'Late', '', 'online', now())")  # fmt: skip
    tables = backup_service.BACKUP_TABLES
    before = table_checksums(tables)

    restore = backup_service.create_restore(archive.name, created_by="olivia_operator")
    job = restore.job
    assert job.max_attempts == 1
    _wait_half_done(job, _restore_copy_in_progress, "restore")
    assert RestoreJob.objects.get(pk=restore.pk).status == RestoreStatus.RESTORING
    worker.kill()
    # The server notices the dead client and rolls its transaction back.
    wait_for(lambda: _other_backends() == 0, 30, 0.1, "the killed worker's database session to end")

    assert table_checksums(tables) == before
    assert lifecycle.sweep_timeouts() == {"timed_out": 1, "retried": 0}
    _assert_killed_attempt_swept(job, retried=False)

    # Nothing may stay wedged: the restore is over (failed), and the next one may start.
    restore.refresh_from_db()
    assert restore.status == RestoreStatus.FAILED, f"restore left {restore.status!r} after its job failed for good"
    assert not backup_service.active_restore_exists()
    # The uploaded archive no restore needs any more goes with the next retention run.
    clean_stale_files(now=timezone.now() + dt.timedelta(days=2))
    assert not archive.exists()
