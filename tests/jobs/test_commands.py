import csv
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dashboard.models import Camera
from jobs.models import ExportJob, Job, RestoreJob
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


def test_export_command_writes_filtered_csv(tmp_path, capsys):
    cam = factories.CameraFactory(id="yard")
    keep = factories.EventFactory(camera=cam, summary="=cmd")
    factories.EventFactory(camera=factories.CameraFactory(id="porch"))
    out = tmp_path / "events.csv"
    call_command("export", "events", "--format", "csv", "--output", str(out), "--camera", "yard",
                 "--since", (timezone.now() - timezone.timedelta(days=1)).isoformat())  # fmt: skip
    rows = list(csv.DictReader(out.open(newline="")))
    assert [int(r["id"]) for r in rows] == [keep.pk]
    assert rows[0]["summary"] == "'=cmd"
    assert "Wrote 1 events" in capsys.readouterr().out
    export = ExportJob.objects.get()
    assert export.created_by.startswith("cli:") and export.job.status == "completed"
    assert AuditLog.objects.filter(action="export_created", resource_id=str(export.pk)).exists()


@pytest.mark.parametrize("fmt", ["json", "zip", "xlsx"])
def test_export_command_other_formats(tmp_path, fmt):
    factories.AlertFactory()
    out = tmp_path / f"alerts.{fmt}"
    call_command("export", "alerts", "--format", fmt, "--output", str(out))
    assert out.stat().st_size > 0
    if fmt == "json":
        assert len(json.loads(out.read_text())) == 1
    if fmt == "zip":
        assert zipfile.ZipFile(out).namelist() == ["alerts.csv"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "last tuesday"], "--since"),
        (["--since", "2025-02-01", "--until", "2025-01-01"], "before its end"),
    ],
)
def test_export_command_bad_input_is_a_command_error(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("export", "events", "--output", str(tmp_path / "x.csv"), *args)
    assert not ExportJob.objects.exists()


def test_export_command_refuses_existing_file_and_missing_folder(tmp_path):
    existing = tmp_path / "x.csv"
    existing.write_text("keep")
    with pytest.raises(CommandError, match="already exists"):
        call_command("export", "events", "--output", str(existing))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export", "events", "--output", str(tmp_path / "nope" / "x.csv"))
    assert existing.read_text() == "keep"


def test_backup_create_and_restore_commands(tmp_path, capsys):
    factories.CameraFactory(id="yard")
    out = tmp_path / "b.zip"
    call_command("backup", "create", "--output", str(out))
    assert "Backup written" in capsys.readouterr().out
    factories.CameraFactory(id="porch")
    call_command("backup", "restore", str(out), "--validate-only")
    assert "nothing was changed" in capsys.readouterr().out
    assert Camera.objects.count() == 2
    call_command("backup", "restore", str(out))
    assert "cameras: 1" in capsys.readouterr().out
    assert list(Camera.objects.values_list("id", flat=True)) == ["yard"]
    assert out.exists()  # the operator's file is left alone


def test_backup_restore_command_refusal(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"nope")
    factories.CameraFactory(id="yard")
    with pytest.raises(CommandError, match="not a zip archive"):
        call_command("backup", "restore", str(bad))
    with pytest.raises(CommandError, match="is not a file"):
        call_command("backup", "restore", str(tmp_path / "missing.zip"))
    assert Camera.objects.count() == 1
    assert RestoreJob.objects.get().status == "failed"
    assert Job.objects.get(job_type="restore").status == "failed"


def test_backup_restore_command_refuses_concurrent_restore(tmp_path):
    f = tmp_path / "b.zip"
    f.write_bytes(b"x")
    factories.RestoreJobFactory(status="restoring")
    with pytest.raises(CommandError, match="Another restore is running"):
        call_command("backup", "restore", str(f))
