import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.choices import ExportStatus, JobStatus, RestoreStatus
from jobs.models import BackupJob, ExportJob, Job, RestoreJob
from jobs.services import backup as backup_service
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_only(viewer):
    """A second browser: `viewer_client` and `operator_client` share one test client."""
    from django.test import Client

    c = Client()
    c.force_login(viewer)
    return c


def _ago(**kw):
    return timezone.now() - dt.timedelta(**kw)


# --- Jobs list and detail ---------------------------------------------------------------------


def test_job_list_filters_and_polls_only_while_live(viewer_client):
    factories.JobFactory(
        job_type="export", status=JobStatus.COMPLETED, created_at=_ago(hours=2), completed_at=_ago(hours=1)
    )
    failed = factories.JobFactory(job_type="backup", status=JobStatus.FAILED, error_message="disk full",
                                  created_at=_ago(hours=3), completed_at=_ago(hours=2))  # fmt: skip
    r = viewer_client.get(reverse("jobs:list"), {"status": ["failed"], "has_error": "true"})
    assert r.status_code == 200
    assert list(r.context["rows"]) == [failed]
    assert b"every 3s" not in r.content
    factories.JobFactory(job_type="export", status=JobStatus.RUNNING, progress_percent=40)
    r = viewer_client.get(reverse("jobs:list"))
    assert len(r.context["rows"]) == 3 and b"every 3s" in r.content and b"width: 40%" in r.content
    r = viewer_client.get(reverse("jobs:list"), {"q": "disk"})
    assert list(r.context["rows"]) == [failed]
    r = viewer_client.get(reverse("jobs:list"), {"q": str(failed.pk)})
    assert list(r.context["rows"]) == [failed]


def test_job_list_keyset_pages_and_bad_input(viewer_client, django_assert_num_queries):
    base = _ago(days=1)
    jobs = [factories.JobFactory(created_at=base + dt.timedelta(seconds=i)) for i in range(55)]
    with django_assert_num_queries(4):  # session, user, groups (is_operator), one page of jobs
        r = viewer_client.get(reverse("jobs:list"))
    assert len(r.context["rows"]) == 50 and r.context["next_query"]
    r2 = viewer_client.get(reverse("jobs:list") + r.context["next_query"])
    assert [j.pk for j in r2.context["rows"]] == [j.pk for j in reversed(jobs[:5])]
    r = viewer_client.get(reverse("jobs:list"), {"before": "garbage", "status": "nope"})
    assert r.status_code == 200 and r.context["rows"] == []
    assert b"Please correct the filters" in r.content
    r = viewer_client.get(
        reverse("jobs:list"), {"created_at__gte": "2025-02-01T00:00", "created_at__lt": "2025-01-01T00:00"}
    )
    assert b"before its end" in r.content
    # A yes/no filter refuses anything else instead of silently showing every job.
    r = viewer_client.get(reverse("jobs:list"), {"has_error": "maybe"})
    assert r.status_code == 200 and r.context["rows"] == []
    assert b"Select a valid choice. maybe is not one of the available choices." in r.content


def test_job_list_htmx_returns_partial(viewer_client):
    r = viewer_client.get(reverse("jobs:list"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-results")
    assert r.status_code == 200 and b"<html" not in r.content and b"jobs-table" in r.content


def test_job_detail_shows_attempts_timeline_logs_result_and_error(viewer_client, django_capture_on_commit_callbacks):
    from jobs.services import tracked

    with django_capture_on_commit_callbacks(execute=True):
        job = tracked.enqueue("test_fail", max_attempts=1)
    r = viewer_client.get(reverse("jobs:detail", args=[job.pk]))
    assert r.status_code == 200
    body = r.content.decode()
    assert "disk on fire" in body and "Traceback" in body and "about to fail" in body
    assert len(r.context["transitions"]) == 2 and len(r.context["attempts"]) == 1
    assert "Retry" not in body  # viewers see no buttons
    r = viewer_client.get(reverse("jobs:detail", args=[job.pk]), {"level": "error"},
                          HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-logs")  # fmt: skip
    assert b"about to fail" not in r.content and b"disk on fire" in r.content
    with django_capture_on_commit_callbacks(execute=True):
        ok = tracked.enqueue("test_ok", kwargs={"x": 1})
    r = viewer_client.get(reverse("jobs:detail", args=[ok.pk]))
    assert '"echo"' in r.context["result_json"] and b"&quot;echo&quot;" in r.content


def test_viewer_cannot_cancel_or_retry(viewer_client):
    job = factories.JobFactory(status=JobStatus.QUEUED)
    assert viewer_client.post(reverse("jobs:cancel", args=[job.pk])).status_code == 403
    assert viewer_client.post(reverse("jobs:retry", args=[job.pk])).status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_operator_cancels_queued_job(operator_client):
    job = factories.JobFactory(status=JobStatus.QUEUED, job_type="test_ok")
    r = operator_client.post(reverse("jobs:cancel", args=[job.pk]))
    assert r.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.transitions.get().triggered_by == "user"
    assert AuditLog.objects.filter(action="job_cancel", resource_id=str(job.pk), actor="olivia_operator").exists()


def test_operator_retry_of_completed_job_is_refused_with_409(operator_client):
    job = factories.JobFactory(status=JobStatus.COMPLETED, created_at=_ago(minutes=5), completed_at=_ago(minutes=1))
    r = operator_client.post(reverse("jobs:retry", args=[job.pk]))
    assert r.status_code == 409 and b"Only failed or cancelled jobs can be retried" in r.content
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    assert AuditLog.objects.filter(action="job_retry", status="failure").exists()


def test_operator_retries_failed_job(operator_client, django_capture_on_commit_callbacks):
    job = factories.JobFactory(job_type="test_ok", status=JobStatus.FAILED, max_attempts=1,
                               created_at=_ago(minutes=5), completed_at=_ago(minutes=1))  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        r = operator_client.post(reverse("jobs:retry", args=[job.pk]))
    assert r.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and job.attempt_number == 2


# --- Exports ------------------------------------------------------------------------------------


def test_export_create_form_summarises_filters(viewer_client):
    r = viewer_client.get(
        reverse("jobs:export_create"), {"export_type": "events", "camera": "yard", "risk_level": "high", "page": "3"}
    )
    assert r.status_code == 200
    assert ("Camera", "yard") in r.context["filter_rows"]
    assert ("camera", "yard") in r.context["filter_items"] and ("page", "3") not in r.context["filter_items"]
    assert b"Only operators may create exports" in r.content


def test_viewer_cannot_create_export(viewer_client):
    r = viewer_client.post(reverse("jobs:export_create"), {"export_type": "events", "export_format": "csv"})
    assert r.status_code == 403
    assert not ExportJob.objects.exists()


def test_operator_creates_export_and_sees_progress(operator_client, django_capture_on_commit_callbacks):
    cam = factories.CameraFactory(id="yard")
    factories.EventFactory(camera=cam)
    factories.EventFactory(camera=factories.CameraFactory(id="porch"))
    with django_capture_on_commit_callbacks(execute=True):
        r = operator_client.post(reverse("jobs:export_create"),
                                 {"export_type": "events", "export_format": "csv", "camera": "yard"})  # fmt: skip
    export = ExportJob.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("jobs:export_detail", args=[export.pk])
    assert export.status == ExportStatus.COMPLETED and export.processed_items == 1
    assert export.created_by == "olivia_operator"
    r = operator_client.get(reverse("jobs:export_detail", args=[export.pk]))
    assert r.status_code == 200 and b"Download" in r.content and b"every 2s" not in r.content


def test_export_create_refuses_bad_filters(operator_client):
    r = operator_client.post(reverse("jobs:export_create"),
                             {"export_type": "events", "export_format": "csv", "started_at__gte": "soon"})  # fmt: skip
    assert r.status_code == 400 and b"not a date" in r.content
    r = operator_client.post(reverse("jobs:export_create"), {"export_type": "events", "export_format": "pdf"})
    assert r.status_code == 400
    assert not ExportJob.objects.exists()


def _finished_export(tmp_content=b"id\n1\n"):
    from django.conf import settings

    folder = Path(settings.EXPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events-x.csv").write_bytes(tmp_content)
    return factories.ExportJobFactory(status=ExportStatus.COMPLETED, output_path="events-x.csv",
                                      output_size_bytes=len(tmp_content), processed_items=1)  # fmt: skip


def test_download_needs_operator_and_acknowledgement(operator_client, viewer_only):
    export = _finished_export()
    url = reverse("jobs:export_download", args=[export.pk])
    assert viewer_only.get(url).status_code == 403
    assert viewer_only.post(url, {"acknowledge": "on"}).status_code == 403
    r = operator_client.get(url)
    assert r.status_code == 200 and b"sensitive" in r.content
    r = operator_client.post(url, {})
    assert r.status_code == 400 and b"Please confirm" in r.content
    export.refresh_from_db()
    assert export.download_count == 0 and not export.sensitivity_acknowledged
    r = operator_client.post(url, {"acknowledge": "on"})
    assert r.status_code == 200
    assert b"".join(r.streaming_content) == b"id\n1\n"
    assert "attachment" in r["Content-Disposition"]
    export.refresh_from_db()
    assert export.download_count == 1 and export.last_downloaded_at and export.sensitivity_acknowledged
    assert export.acknowledged_at and export.compliance_metadata["last_acknowledged_by"] == "olivia_operator"
    audit = AuditLog.objects.get(action="export_downloaded", resource_id=str(export.pk))
    assert audit.actor == "olivia_operator" and audit.details["download_count"] == 1


@pytest.mark.parametrize("stored", ["../secret.txt", "/etc/passwd", "sub/../../secret.txt"])
def test_download_never_serves_outside_export_folder(operator_client, stored, tmp_path):
    (tmp_path / "secret.txt").write_text("top secret")
    export = factories.ExportJobFactory(status=ExportStatus.COMPLETED, output_path=stored)
    r = operator_client.post(reverse("jobs:export_download", args=[export.pk]), {"acknowledge": "on"})
    assert r.status_code == 404
    export.refresh_from_db()
    assert export.download_count == 0


def test_download_refuses_symlink_out_of_folder(operator_client, tmp_path):
    from django.conf import settings

    (tmp_path / "secret.txt").write_text("top secret")
    folder = Path(settings.EXPORT_DIR)
    folder.mkdir(parents=True)
    (folder / "link.csv").symlink_to(tmp_path / "secret.txt")
    export = factories.ExportJobFactory(status=ExportStatus.COMPLETED, output_path="link.csv")
    r = operator_client.post(reverse("jobs:export_download", args=[export.pk]), {"acknowledge": "on"})
    assert r.status_code == 404


def test_legal_hold_toggle_is_operator_only_and_audited(operator_client, viewer_only):
    export = _finished_export()
    url = reverse("jobs:export_legal_hold", args=[export.pk])
    assert viewer_only.post(url, {"legal_hold": "true"}).status_code == 403
    r = operator_client.post(url, {"legal_hold": "true"})
    assert r.status_code == 302
    export.refresh_from_db()
    assert export.legal_hold
    operator_client.post(url, {"legal_hold": "false"})
    export.refresh_from_db()
    assert not export.legal_hold
    changes = [
        a.details["changes"]["legal_hold"]
        for a in AuditLog.objects.filter(action="export_legal_hold").order_by("timestamp")
    ]
    assert changes == [[False, True], [True, False]]


def test_export_list_pages(viewer_client):
    _finished_export()
    r = viewer_client.get(reverse("jobs:exports"))
    assert r.status_code == 200 and len(r.context["rows"]) == 1


# --- Backups ---------------------------------------------------------------------------------------


def test_backups_page_and_viewer_restrictions(viewer_client):
    r = viewer_client.get(reverse("jobs:backups"))
    assert r.status_code == 200 and b"Only operators may create backups" in r.content
    assert viewer_client.post(reverse("jobs:backup_create")).status_code == 403
    b = factories.BackupJobFactory(status="completed", file_path="x.zip")
    assert viewer_client.get(reverse("jobs:backup_download", args=[b.pk])).status_code == 403
    assert viewer_client.post(reverse("jobs:backup_delete", args=[b.pk])).status_code == 403
    assert viewer_client.post(reverse("jobs:restore_upload")).status_code == 403


def test_operator_backup_download_delete(operator_client, django_capture_on_commit_callbacks):
    factories.CameraFactory(id="yard")
    with django_capture_on_commit_callbacks(execute=True):
        r = operator_client.post(reverse("jobs:backup_create"))
    backup = BackupJob.objects.get()
    assert r.status_code == 302 and backup.status == "completed"
    r = operator_client.get(reverse("jobs:backup_detail", args=[backup.pk]))
    assert b"cameras" in r.content and b"Download" in r.content
    r = operator_client.get(reverse("jobs:backup_download", args=[backup.pk]))
    assert r.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content))).getinfo("manifest.json")
    assert AuditLog.objects.filter(action="backup_downloaded", resource_id=str(backup.pk)).exists()
    path = backup_service.backup_file_path(backup)
    r = operator_client.post(reverse("jobs:backup_delete", args=[backup.pk]))
    assert r.status_code == 302 and not path.exists()


def test_restore_upload_round_trip(operator_client, django_capture_on_commit_callbacks):
    factories.CameraFactory(id="yard", name="Yard")
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(reverse("jobs:backup_create"))
    data = backup_service.backup_file_path(BackupJob.objects.get()).read_bytes()
    factories.CameraFactory(id="porch")
    upload = io.BytesIO(data)
    upload.name = "backup.zip"
    with django_capture_on_commit_callbacks(execute=True):
        r = operator_client.post(reverse("jobs:restore_upload"), {"archive": upload, "confirm": "on"})
    restore = RestoreJob.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("jobs:restore_detail", args=[restore.pk])
    assert restore.status == RestoreStatus.COMPLETED, restore.error_message
    from dashboard.models import Camera

    assert list(Camera.objects.values_list("id", flat=True)) == ["yard"]
    r = operator_client.get(reverse("jobs:restore_detail", args=[restore.pk]))
    assert r.status_code == 200 and b"Rows restored" in r.content


def test_restore_upload_needs_confirmation(operator_client):
    upload = io.BytesIO(b"PK")
    upload.name = "b.zip"
    r = operator_client.post(reverse("jobs:restore_upload"), {"archive": upload})
    assert r.status_code == 400 and b"Tick the confirmation" in r.content
    assert not RestoreJob.objects.exists()


def test_restore_upload_bad_archive_is_a_failed_job_shown_on_the_page(
    operator_client, django_capture_on_commit_callbacks
):
    upload = io.BytesIO(b"not a zip at all")
    upload.name = "b.zip"
    with django_capture_on_commit_callbacks(execute=True):
        r = operator_client.post(reverse("jobs:restore_upload"), {"archive": upload, "confirm": "on"})
    restore = RestoreJob.objects.get()
    assert restore.status == RestoreStatus.FAILED and restore.job.status == JobStatus.FAILED
    r = operator_client.get(r["Location"])
    assert r.status_code == 200 and b"not a zip archive" in r.content


def test_oversized_upload_is_refused_as_failed_job(operator_client, settings, django_capture_on_commit_callbacks):
    settings.RESTORE_MAX_UPLOAD_BYTES = 1024
    upload = io.BytesIO(b"x" * 4096)
    upload.name = "big.zip"
    with django_capture_on_commit_callbacks(execute=True):
        r = operator_client.post(reverse("jobs:restore_upload"), {"archive": upload, "confirm": "on"})
    assert r.status_code == 302
    restore = RestoreJob.objects.get()
    assert restore.status == RestoreStatus.FAILED and "the limit is 1.0 KiB" in restore.error_message
    assert not list(Path(settings.UPLOAD_DIR).glob("*")) if Path(settings.UPLOAD_DIR).exists() else True


def test_second_restore_is_refused_while_one_runs(operator_client):
    factories.RestoreJobFactory(status=RestoreStatus.RESTORING)
    upload = io.BytesIO(b"PK")
    upload.name = "b.zip"
    r = operator_client.post(reverse("jobs:restore_upload"), {"archive": upload, "confirm": "on"})
    assert r.status_code == 409 and b"Another restore is still running" in r.content
    assert RestoreJob.objects.count() == 1


def test_pages_render_for_every_record(viewer_client):
    job = factories.JobFactory()
    export = factories.ExportJobFactory(job=job, filter_params='{"camera": ["yard"]}')
    b = factories.BackupJobFactory()
    rs = factories.RestoreJobFactory(items_restored={"cameras": 1})
    for url in [reverse("jobs:detail", args=[job.pk]), reverse("jobs:export_detail", args=[export.pk]),
                reverse("jobs:backup_detail", args=[b.pk]), reverse("jobs:restore_detail", args=[rs.pk]),
                reverse("jobs:exports"), reverse("jobs:backups")]:  # fmt: skip
        r = viewer_client.get(url)
        assert r.status_code == 200, url
    assert viewer_client.get(reverse("jobs:detail", args=["00000000-0000-0000-0000-000000000000"])).status_code == 404
    assert Job.objects.count() == 1


def test_large_upload_is_moved_from_its_temporary_file(operator_client, settings, django_capture_on_commit_callbacks):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # force Django to spool the upload to disk
    upload = io.BytesIO(b"not a zip but long enough to be spooled")
    upload.name = "b.zip"
    with django_capture_on_commit_callbacks(execute=True):
        r = operator_client.post(reverse("jobs:restore_upload"), {"archive": upload, "validate_only": "on"})
    assert r.status_code == 302
    restore = RestoreJob.objects.get()
    assert restore.status == RestoreStatus.FAILED and "not a zip archive" in restore.error_message
    assert not any(Path(settings.UPLOAD_DIR).iterdir())  # the single-use upload was discarded
