"""`manage.py seed_demo`: every table gets consistent rows, and a second run changes nothing."""

from __future__ import annotations

import io
import time

import pytest
from django.apps import apps
from django.contrib.admin.utils import quote
from django.core.management import call_command
from django.db.models import F, Q
from django.utils import timezone

from alerting.models import Alert, AlertRule, CameraZone
from dashboard.models import Camera, Event, EventDetection, ReidEmbedding
from jobs.models import ExportJob, Job, JobAttempt
from monitoring.models import GpuStat, Log

pytestmark = pytest.mark.django_db

APPS = ("dashboard", "monitoring", "alerting", "jobs")


def _counts():
    return {m._meta.label: m.objects.count() for a in APPS for m in apps.get_app_config(a).get_models()}


@pytest.fixture
def seeded(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    out = io.StringIO()
    started = time.monotonic()
    call_command("seed_demo", stdout=out)
    return {"seconds": time.monotonic() - started, "output": out.getvalue(), "export_dir": settings.EXPORT_DIR}


def test_seed_demo_fills_every_table_and_is_idempotent(seeded):
    counts = _counts()
    empty = [label for label, n in counts.items() if n == 0]
    assert empty == [], f"seed_demo left these tables empty: {empty}"
    assert "Demo data loaded" in seeded["output"]
    assert seeded["seconds"] < 60

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "already present" in out.getvalue()
    assert _counts() == counts


def test_seed_demo_data_is_consistent(seeded, admin_client_):
    assert sorted(Camera.objects.values_list("id", flat=True)) == ["backyard", "driveway", "front_door", "garage"]
    assert 200 <= Event.objects.count() <= 500
    # Every event has its detections, from its own camera.
    assert not Event.objects.filter(eventdetection__isnull=True).exists()
    assert not EventDetection.objects.exclude(event__camera_id=F("detection__camera_id")).exists()
    # A week of events, none in the future.
    now = timezone.now()
    assert not Event.objects.filter(
        Q(started_at__gt=now) | Q(started_at__lt=now - timezone.timedelta(days=7, minutes=5))
    ).exists()
    assert all(len(e) == 512 for e in ReidEmbedding.objects.values_list("embedding", flat=True)[:20])
    # Two GPUs: a sample every minute over the last day, sparser before.
    for index in (0, 1):
        recent = GpuStat.objects.filter(gpu_index=index, recorded_at__gte=now - timezone.timedelta(hours=24))
        assert 1400 <= recent.count() <= 1445
        assert GpuStat.objects.filter(gpu_index=index, recorded_at__lt=now - timezone.timedelta(days=5)).exists()
    assert set(Log.objects.values_list("level", flat=True).distinct()) == {
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
        "CRITICAL",
    }
    assert set(Log.objects.values_list("source", flat=True).distinct()) == {"backend", "frontend"}
    assert set(Alert.objects.values_list("status", flat=True).distinct()) == {
        "pending",
        "delivered",
        "acknowledged",
        "dismissed",
    }
    assert set(Job.objects.values_list("status", flat=True).distinct()) == {
        "queued",
        "running",
        "completed",
        "failed",
        "cancelled",
    }
    assert JobAttempt.objects.filter(job__status="failed").count() >= 3
    schedule = AlertRule.objects.get(name="Person at night").schedule
    assert schedule == {"days": [0, 1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00", "timezone": "UTC"}
    # What the demo writes is what the forms would accept (zones' geometry, rules' placeholders).
    for model in (CameraZone, AlertRule, Camera):
        for obj in model.objects.all():
            obj.full_clean()
    for obj in Event.objects.all()[:50]:
        obj.full_clean()
    # The completed export's file really exists, so the demo's download works.
    export = ExportJob.objects.get(status="completed")
    path = seeded["export_dir"] / export.output_path
    assert path.is_file()
    assert path.stat().st_size == export.output_size_bytes
    assert path.read_text().splitlines()[0].startswith("id,camera_id,started_at")
    assert export.job.kwargs == {"export_id": str(export.pk)}
    # The admin shows the demo data: every changelist and the newest row's change page.
    from django.contrib import admin
    from django.urls import reverse

    for model in admin.site._registry:
        if model._meta.app_label not in APPS:
            continue
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        assert admin_client_.get(reverse(f"{name}_changelist")).status_code == 200, name
        obj = model.objects.first()
        assert admin_client_.get(reverse(f"{name}_change", args=[quote(obj.pk)])).status_code == 200, name


def test_seed_demo_skips_an_installation_with_the_marker_camera(settings, tmp_path):
    from tests import factories

    settings.EXPORT_DIR = tmp_path
    factories.CameraFactory(id="front_door")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "already present" in out.getvalue()
    assert Event.objects.count() == 0


def test_seed_demo_without_factory_boy_says_what_to_install(monkeypatch):
    import sys

    from django.core.management.base import CommandError

    import tests

    monkeypatch.delattr(tests, "factories")
    monkeypatch.setitem(sys.modules, "tests.factories", None)
    monkeypatch.setitem(sys.modules, "factory", None)
    with pytest.raises(CommandError, match=r"pip install -e '\.\[test\]'"):
        call_command("seed_demo")
    assert Camera.objects.count() == 0
