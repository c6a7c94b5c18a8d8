import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.http import QueryDict
from django.utils import timezone
from openpyxl import load_workbook

from jobs.choices import ExportFormat, ExportStatus, JobStatus
from jobs.models import ExportJob
from jobs.services import exports
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

NASTY = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", 'plain, "quoted"\nnext line']


def _export(django_capture_on_commit_callbacks, export_type="events", fmt="csv", filters=None, **kw):
    with django_capture_on_commit_callbacks(execute=True):
        export = exports.create_export(export_type, fmt, filters or {}, created_by="olivia_operator", **kw)
    export.refresh_from_db()
    return export


def _events(n=3, **kw):
    cam = factories.CameraFactory(id="front_door", name="=Front door")
    base = timezone.now() - dt.timedelta(hours=1)
    return [
        factories.EventFactory(camera=cam, started_at=base + dt.timedelta(minutes=i), summary=f"event {i}", **kw)
        for i in range(n)
    ]


def _csv_rows(path: Path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_csv_export_writes_all_rows_newest_first(django_capture_on_commit_callbacks):
    events = _events(3)
    export = _export(django_capture_on_commit_callbacks)
    assert export.status == ExportStatus.COMPLETED, export.error_message
    assert export.job.status == JobStatus.COMPLETED
    assert export.processed_items == 3 and export.total_items == 3 and export.progress_percent == 100
    path = exports.export_file_path(export)
    assert path.parent == Path(settings.EXPORT_DIR).resolve()
    assert len(path.name) > 30  # 128 random bits in the name
    rows = _csv_rows(path)
    assert [int(r["id"]) for r in rows] == [e.pk for e in reversed(events)]
    assert rows[0]["camera_id"] == "front_door"
    assert rows[0]["camera_name"] == "'=Front door"
    assert export.output_size_bytes == path.stat().st_size
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    assert AuditLog.objects.filter(action="export_created", resource_id=str(export.pk)).exists()


def test_csv_neutralises_formula_cells(django_capture_on_commit_callbacks):
    cam = factories.CameraFactory(id="yard", name="Yard")
    for i, text in enumerate(NASTY):
        factories.EventFactory(
            camera=cam, summary=text, notes=text, started_at=timezone.now() - dt.timedelta(minutes=i)
        )
    export = _export(django_capture_on_commit_callbacks)
    rows = _csv_rows(exports.export_file_path(export))
    summaries = [r["summary"] for r in rows]
    assert summaries[:6] == ["'" + t for t in NASTY[:6]]
    assert summaries[6] == NASTY[6]  # commas, quotes and newlines survive CSV quoting untouched
    assert all(r["notes"][0] not in "=+-@\t\r" for r in rows)


def test_json_export_keeps_values_verbatim(django_capture_on_commit_callbacks):
    cam = factories.CameraFactory(id="yard", name="Yard")
    tricky = '=1+1 "q" \\ back \\n\nnew\tline\r \x01 ünï \\\\ 😀'
    factories.EventFactory(camera=cam, summary=tricky, risk_score=90, reviewed=True)
    export = _export(django_capture_on_commit_callbacks, fmt="json")
    data = json.loads(exports.export_file_path(export).read_text())
    assert len(data) == 1
    assert data[0]["summary"] == tricky
    assert data[0]["risk_score"] == 90 and data[0]["reviewed"] is True
    assert data[0]["camera_id"] == "yard"


def test_json_export_of_nothing_is_an_empty_array(django_capture_on_commit_callbacks):
    export = _export(django_capture_on_commit_callbacks, fmt="json")
    assert json.loads(exports.export_file_path(export).read_text()) == []
    assert export.processed_items == 0 and export.status == ExportStatus.COMPLETED


def test_zip_export_holds_the_csv(django_capture_on_commit_callbacks):
    _events(2)
    export = _export(django_capture_on_commit_callbacks, fmt="zip")
    with zipfile.ZipFile(exports.export_file_path(export)) as zf:
        assert zf.namelist() == ["events.csv"]
        rows = list(csv.DictReader(io.TextIOWrapper(zf.open("events.csv"), encoding="utf-8")))
    assert len(rows) == 2
    assert rows[0]["camera_name"] == "'=Front door"


def test_xlsx_export_has_typed_neutralised_cells(django_capture_on_commit_callbacks):
    events = _events(2, risk_score=70)
    events[0].summary = "@cmd"
    events[0].save()
    export = _export(django_capture_on_commit_callbacks, fmt="xlsx")
    wb = load_workbook(exports.export_file_path(export), read_only=True)
    ws = wb["events"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "id" and rows[0][3] == "started_at (UTC)"
    assert len(rows) == 3
    assert isinstance(rows[1][3], dt.datetime)
    assert rows[1][5] == 70
    assert rows[2][9] == "'@cmd"
    assert rows[1][2] == "'=Front door"


def test_alert_export_with_filters(django_capture_on_commit_callbacks):
    cam = factories.CameraFactory(id="garage", name="Garage")
    other = factories.CameraFactory(id="porch", name="Porch")
    rule = factories.AlertRuleFactory(name="+Night")
    keep = factories.AlertFactory(event=factories.EventFactory(camera=cam), rule=rule, severity="high")
    factories.AlertFactory(event=factories.EventFactory(camera=other), rule=rule, severity="high")
    factories.AlertFactory(event=factories.EventFactory(camera=cam), rule=rule, severity="low")
    filters = exports.clean_filters("alerts", QueryDict("camera=garage&severity=high&severity=critical&bogus=1"))
    assert filters == {"camera": ["garage"], "severity": ["critical", "high"]}
    export = _export(django_capture_on_commit_callbacks, "alerts", "csv", filters)
    rows = _csv_rows(exports.export_file_path(export))
    assert [r["id"] for r in rows] == [str(keep.pk)]
    assert rows[0]["rule_name"] == "'+Night"
    assert rows[0]["camera_id"] == "garage"


def test_event_filters_time_range_risk_and_reviewed(django_capture_on_commit_callbacks):
    cam = factories.CameraFactory(id="yard", name="Yard")
    t0 = timezone.now().replace(microsecond=0) - dt.timedelta(days=2)
    inside = factories.EventFactory(camera=cam, started_at=t0 + dt.timedelta(hours=1), risk_score=90, reviewed=False)
    factories.EventFactory(camera=cam, started_at=t0 + dt.timedelta(hours=1), risk_score=10, reviewed=False)
    factories.EventFactory(camera=cam, started_at=t0 + dt.timedelta(hours=1), risk_score=90, reviewed=True)
    factories.EventFactory(camera=cam, started_at=t0 + dt.timedelta(days=1), risk_score=90, reviewed=False)
    qs = QueryDict(mutable=True)
    qs.update({"started_at__gte": t0.isoformat(), "started_at__lt": (t0 + dt.timedelta(hours=2)).isoformat()})
    qs.setlist("risk_level", ["critical", "high"])
    qs["reviewed"] = "false"
    filters = exports.clean_filters("events", qs)
    export = _export(django_capture_on_commit_callbacks, filters=filters)
    assert [int(r["id"]) for r in _csv_rows(exports.export_file_path(export))] == [inside.pk]
    assert export.total_items == 1


def test_event_filters_score_range_object_type_feedback_and_alert(django_capture_on_commit_callbacks):
    # The same query string as the events list: "export these results" must export exactly those.
    cam = factories.CameraFactory(id="drive", name="Drive")
    wanted = factories.EventFactory(camera=cam, risk_score=70, object_types="car, person")
    factories.AlertFactory(event=wanted)
    factories.EventFeedbackFactory(event=wanted)
    factories.EventFactory(camera=cam, risk_score=70, object_types="persons")  # "persons" is not "person"
    too_low = factories.EventFactory(camera=cam, risk_score=20, object_types="person")
    factories.AlertFactory(event=too_low)
    factories.EventFeedbackFactory(event=too_low)
    no_alert = factories.EventFactory(camera=cam, risk_score=80, object_types="person")
    factories.EventFeedbackFactory(event=no_alert)
    query = "risk_score_min=50&risk_score_max=90&object_type=Person&has_alert=yes&has_feedback=true"
    filters = exports.clean_filters("events", QueryDict(query))
    assert filters == {"risk_score_min": 50, "risk_score_max": 90, "object_type": "person", "has_alert": True,
                       "has_feedback": True}  # fmt: skip
    export = _export(django_capture_on_commit_callbacks, filters=filters)
    assert [int(r["id"]) for r in _csv_rows(exports.export_file_path(export))] == [wanted.pk]
    assert export.total_items == 1
    negated = exports.clean_filters("events", QueryDict("has_alert=no&has_feedback=no"))
    export = _export(django_capture_on_commit_callbacks, filters=negated)
    rows = {int(r["id"]) for r in _csv_rows(exports.export_file_path(export))}
    assert wanted.pk not in rows and too_low.pk not in rows and no_alert.pk not in rows and len(rows) == 1


@pytest.mark.parametrize(
    "query, message",
    [
        ("risk_score_min=high", "not a whole number"),
        ("risk_score_max=101", "between 0 and 100"),
        ("risk_score_min=80&risk_score_max=20", "risk score range is empty"),
        ("object_type=" + "x" * 51, "at most 50"),
        ("has_alert=perhaps", "yes or no"),
        ("started_at__gte=yesterday", "not a date"),
        ("risk_level=extreme", "unknown value"),
        ("reviewed=maybe", "yes or no"),
        ("started_at__gte=2025-02-01&started_at__lt=2025-01-01", "before its end"),
    ],
)
def test_bad_filters_are_refused_with_a_message(query, message):
    with pytest.raises(ValidationError) as exc:
        exports.clean_filters("events", QueryDict(query))
    assert message in " ".join(exc.value.messages)


def test_bad_rule_id_refused():
    with pytest.raises(ValidationError, match="not a rule id"):
        exports.clean_filters("alerts", QueryDict("rule=abc"))


def test_expiry_uses_retention_days(django_capture_on_commit_callbacks):
    export = _export(django_capture_on_commit_callbacks, retention_days=30)
    assert dt.timedelta(days=29, hours=23) < export.expires_at - export.created_at <= dt.timedelta(days=30)
    default = _export(django_capture_on_commit_callbacks)
    assert abs((default.expires_at - default.created_at) - dt.timedelta(days=7)) < dt.timedelta(seconds=1)


def test_expiry_sweep_deletes_file_and_row_but_respects_legal_hold(django_capture_on_commit_callbacks):
    _events(1)
    expired = _export(django_capture_on_commit_callbacks)
    held = _export(django_capture_on_commit_callbacks)
    fresh = _export(django_capture_on_commit_callbacks)
    exports.set_legal_hold(held, True, actor="olivia_operator")
    past = timezone.now() - dt.timedelta(minutes=1)
    ExportJob.objects.filter(pk__in=[expired.pk, held.pk]).update(expires_at=past)
    expired_path = exports.export_file_path(expired)
    assert exports.expire_exports() == 1
    assert not expired_path.exists()
    assert not ExportJob.objects.filter(pk=expired.pk).exists()
    assert exports.export_file_path(held).exists()
    assert ExportJob.objects.filter(pk__in=[held.pk, fresh.pk]).count() == 2
    assert AuditLog.objects.filter(action="export_expired", resource_id=str(expired.pk)).exists()
    hold = AuditLog.objects.get(action="export_legal_hold", resource_id=str(held.pk))
    assert hold.details == {"changes": {"legal_hold": [False, True]}}


def test_expiry_never_deletes_outside_the_export_folder(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    export = factories.ExportJobFactory(output_path=str(outside), expires_at=timezone.now() - dt.timedelta(days=1))
    factories.ExportJobFactory(output_path="../precious.txt", expires_at=timezone.now() - dt.timedelta(days=1))
    assert exports.expire_exports() == 2
    assert outside.read_text() == "keep me"
    with pytest.raises(SuspiciousFileOperation):
        exports.export_file_path(export)


def test_cli_destination_export(django_capture_on_commit_callbacks, tmp_path):
    _events(2)
    dest = tmp_path / "out" / "events.csv"
    export = _export(django_capture_on_commit_callbacks, destination=str(dest))
    assert export.status == ExportStatus.COMPLETED
    assert len(_csv_rows(dest)) == 2
    with pytest.raises(SuspiciousFileOperation):
        exports.export_file_path(export)  # written outside EXPORT_DIR: never served by the web


def test_export_failure_is_recorded(django_capture_on_commit_callbacks, settings, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    settings.EXPORT_DIR = blocker / "exports"
    export = _export(django_capture_on_commit_callbacks)
    assert export.status == ExportStatus.FAILED
    assert "could not be written" in export.error_message
    assert export.job.status in (JobStatus.FAILED, JobStatus.QUEUED)


def test_copy_sql_is_what_benchmarks_compare_against():
    sql, params = exports.copy_sql("events", {"camera": ["a"]}, ExportFormat.CSV)
    assert sql.startswith("COPY (SELECT") and "FORMAT csv" in sql and params == [["a"]]


@pytest.mark.parametrize("value", ["2024-13-45", "2025-01-31T25:00", "2025-01-31T08:00:00+99:00", "\x00"])
def test_impossible_dates_are_validation_errors(value):
    with pytest.raises(ValidationError, match="not a date"):
        exports.clean_filters("events", {"started_at__gte": value})
