"""Live progress and mid-stream cancellation go through a second connection: they need committed rows."""

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from jobs.choices import JobStatus
from jobs.models import ExportJob, Job
from jobs.services import exports
from jobs.services.live import LiveReporter
from jobs.services.tracked import JobCancelled, JobContext
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _running_job():
    now = timezone.now()
    return factories.JobFactory(job_type="export", status=JobStatus.RUNNING, created_at=now, started_at=now)


def test_reporter_updates_job_and_row_from_a_second_connection():
    job = _running_job()
    export = factories.ExportJobFactory(job=job, status="running")
    with LiveReporter(JobContext(job, 1), "export_jobs", export.pk, min_interval=0) as rep:
        assert rep.update(40, "Writing rows", processed_items=400)
        assert not rep.cancel_requested()
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        assert rep.cancel_requested()
    job.refresh_from_db()
    export.refresh_from_db()
    assert job.progress_percent == 40 and job.current_step == "Writing rows" and job.heartbeat_at
    assert export.progress_percent == 40 and export.processed_items == 400


def test_cancel_during_copy_stops_the_stream_and_leaves_no_file(settings, tmp_path, monkeypatch):
    cam = factories.CameraFactory(id="yard")
    base = timezone.now() - dt.timedelta(days=1)
    factories.EventFactory.create_batch(30, camera=cam, started_at=base)
    job = _running_job()
    job.cancel_requested = True
    job.save()
    export = factories.ExportJobFactory(job=job)
    monkeypatch.setattr(exports._Progress, "EVERY", 10)
    with LiveReporter(JobContext(job, 1), "export_jobs", export.pk, min_interval=0) as rep:
        progress = exports._Progress(rep, 30, timezone.now())
        with pytest.raises(JobCancelled):
            exports.write_export_file(export, Path(settings.EXPORT_DIR) / "x.csv", progress)
    assert progress.rows == 10
    assert list(Path(settings.EXPORT_DIR).iterdir()) == []
    # The main connection is usable again after the cancelled COPY.
    assert ExportJob.objects.filter(pk=export.pk).exists()


def test_export_job_reports_progress_while_streaming(settings, monkeypatch):
    cam = factories.CameraFactory(id="yard")
    factories.EventFactory.create_batch(25, camera=cam)
    seen = []
    real_update = LiveReporter.update

    def spy(self, percent, step=None, *, force=False, **fields):
        wrote = real_update(self, percent, step, force=force, **fields)
        if self.table == "export_jobs" and "processed_items" in fields:
            # The main connection is busy streaming COPY: read back through the side connection.
            seen.append(self._execute("SELECT processed_items FROM export_jobs WHERE id = %s", [self.row_id])[0])
        return wrote

    monkeypatch.setattr(LiveReporter, "update", spy)
    monkeypatch.setattr(exports._Progress, "EVERY", 10)
    monkeypatch.setattr(LiveReporter, "due", lambda self: True)
    from jobs.services import lifecycle

    export = exports.create_export("events", "csv", {}, created_by="t", dispatch=False)
    assert lifecycle.run_job(export.job_id) == "completed"
    export.refresh_from_db()
    assert export.processed_items == 25 and export.status == "completed"
    assert seen == [10, 20]  # visible to other connections mid-export


def test_backup_and_restore_on_a_worker_like_autocommit_connection(settings):
    """Outside a test transaction: the REPEATABLE READ, READ ONLY snapshot and the restore's own transaction."""
    from jobs.models import BackupJob, RestoreJob
    from jobs.services import backup, lifecycle

    factories.EventFactory(camera=factories.CameraFactory(id="yard"))
    b = backup.create_backup(created_by="t", dispatch=False)
    assert lifecycle.run_job(b.job_id) == "completed"
    b = BackupJob.objects.get(pk=b.pk)
    assert b.status == "completed" and b.job.logs.filter(message__contains="events: 1").exists()
    factories.CameraFactory(id="porch")
    r = backup.create_restore(str(backup.backup_file_path(b)), created_by="t", cli=True, dispatch=False)
    assert lifecycle.run_job(r.job_id) == "completed"
    assert RestoreJob.objects.get(pk=r.pk).items_restored["cameras"] == 1
    from dashboard.models import Camera

    assert list(Camera.objects.values_list("id", flat=True)) == ["yard"]
