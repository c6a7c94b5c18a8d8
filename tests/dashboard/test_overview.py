"""Overview (home) page and its lazily loaded, self-refreshing widgets."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.models import today_start
from dashboard.services import overview
from tests import factories


def _widget(key: str) -> str:
    return reverse("dashboard:overview_widget", args=[key])


def test_home_requires_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_widget_requires_login(client, db):
    assert client.get(_widget("gpus")).status_code == 302


def test_home_lazy_loads_every_widget_with_a_real_link(operator_client, django_assert_num_queries):
    # session, user, group: the widgets' data is not read until they load.
    with django_assert_num_queries(3):
        response = operator_client.get(reverse("home"))
    assert response.status_code == 200
    body = response.content.decode()
    for key, _title, area in overview.WIDGETS:
        assert f'hx-get="{_widget(key)}"' in body
        assert f'href="{reverse(area)}"' in body
    assert body.count('hx-trigger="load, every 10s"') == len(overview.WIDGETS)


@pytest.mark.parametrize(
    "key, queries",
    [("gpus", 2), ("alerts", 1), ("jobs", 1), ("events", 1), ("logs", 2), ("cameras", 1)],
)
def test_each_widget_answers_with_a_pinned_query_count(operator_client, key, queries, django_assert_num_queries):
    factories.GpuStatFactory()
    factories.AlertFactory()
    factories.JobFactory(status="running", created_at=timezone.now(), started_at=timezone.now(), progress_percent=40)
    factories.EventFactory()
    factories.LogFactory(level="ERROR")
    factories.CameraFactory(status="offline")
    with django_assert_num_queries(3 + queries):
        response = operator_client.get(_widget(key), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and "<h2>" in body
    # Without HTMX the widget is a page of its own.
    full = operator_client.get(_widget(key))
    assert full.status_code == 200 and "<html" in full.content.decode()


def test_unknown_widget_is_404(operator_client):
    assert operator_client.get(_widget("weather")).status_code == 404


def test_gpu_widget_shows_latest_sample_per_gpu(operator_client):
    old = timezone.now() - dt.timedelta(minutes=1)
    factories.GpuStatFactory(recorded_at=old - dt.timedelta(minutes=5), gpu_index=0, gpu_utilization=10)
    factories.GpuStatFactory(recorded_at=old, gpu_index=0, gpu_utilization=77, memory_used=23500, memory_total=24576)
    factories.GpuStatFactory(recorded_at=old - dt.timedelta(hours=1), gpu_index=1, gpu_name="Old card")
    factories.GpuStatFactory(recorded_at=old, gpu_index=0, host="node2")
    response = operator_client.get(_widget("gpus"), HTTP_HX_REQUEST="true")
    gpus = response.context["gpus"]
    assert [(g["sample"].host, g["sample"].gpu_index) for g in gpus] == [
        ("localhost", 0),
        ("localhost", 1),
        ("node2", 0),
    ]
    assert gpus[0]["sample"].gpu_utilization == 77
    assert gpus[0]["memory_percent"] == 96 and gpus[0]["memory_level"] == "critical"
    assert [g["stale"] for g in gpus] == [False, True, False]
    assert "stale" in response.content.decode()


def test_gpu_widget_without_gpus_says_why(operator_client):
    response = operator_client.get(_widget("gpus"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "No NVIDIA GPU detected:" in body
    assert response.context["gpus"] == []


def test_gpu_widget_reports_the_samplers_reason(operator_client):
    models = pytest.importorskip("monitoring.models")
    if not hasattr(models, "SamplerStatus"):
        pytest.skip("monitoring has no SamplerStatus model")
    models.SamplerStatus.objects.create(host="h1", available=False, reason="NVML Shared Library Not Found")
    response = operator_client.get(_widget("gpus"), HTTP_HX_REQUEST="true")
    assert "No NVIDIA GPU detected: NVML Shared Library Not Found" in response.content.decode()


def test_alerts_widget_counts_open_alerts_by_severity(operator_client):
    for severity, status in [
        ("critical", "pending"),
        ("critical", "delivered"),
        ("high", "pending"),
        ("low", "acknowledged"),
        ("medium", "dismissed"),
    ]:
        factories.AlertFactory(severity=severity, status=status)
    response = operator_client.get(_widget("alerts"), HTTP_HX_REQUEST="true")
    counts = {level["value"]: level["count"] for level in response.context["levels"]}
    assert counts == {"critical": 2, "high": 1, "medium": 0, "low": 0}
    assert response.context["total"] == 3


def test_jobs_widget_lists_running_jobs_with_progress(operator_client):
    now = timezone.now()
    running = factories.JobFactory(
        job_type="export",
        status="running",
        created_at=now,
        started_at=now,
        progress_percent=42,
        current_step="Writing rows",
    )
    factories.JobFactory(status="queued")
    factories.JobFactory(status="completed", created_at=now, started_at=now, completed_at=now, progress_percent=100)
    response = operator_client.get(_widget("jobs"), HTTP_HX_REQUEST="true")
    assert [j.pk for j in response.context["jobs"]] == [running.pk]
    body = response.content.decode()
    assert "width: 42%" in body and "Writing rows" in body


def test_events_widget_counts_today_by_risk_level(operator_client):
    start = today_start()
    factories.EventFactory(started_at=start + dt.timedelta(seconds=1), risk_score=90)
    factories.EventFactory(started_at=start + dt.timedelta(seconds=2), risk_score=95)
    factories.EventFactory(started_at=start + dt.timedelta(seconds=3), risk_score=10)
    factories.EventFactory(started_at=start + dt.timedelta(seconds=4), risk_score=None, risk_level=None)
    factories.EventFactory(started_at=start - dt.timedelta(seconds=1), risk_score=90)  # yesterday
    response = operator_client.get(_widget("events"), HTTP_HX_REQUEST="true")
    counts = {level["value"]: level["count"] for level in response.context["levels"]}
    assert counts == {"critical": 2, "high": 0, "medium": 0, "low": 1}
    assert response.context["unscored"] == 1 and response.context["total"] == 4
    assert "risk_level=critical" in response.content.decode()
    # The widget's link opens the events list on exactly today's events.
    import re
    from html import unescape

    link = unescape(re.search(r'<h2><a href="([^"]+)"', response.content.decode()).group(1))
    listed = operator_client.get(link)
    assert listed.status_code == 200 and not listed.context["form"].errors
    assert len(listed.context["page"].items) == 4


def test_logs_widget_counts_errors_of_the_last_hour(operator_client):
    now = timezone.now()
    factories.LogFactory(level="ERROR", message="disk full", timestamp=now - dt.timedelta(minutes=5))
    factories.LogFactory(level="CRITICAL", message="gpu lost", timestamp=now - dt.timedelta(minutes=50))
    factories.LogFactory(level="ERROR", message="too old", timestamp=now - dt.timedelta(minutes=70))
    factories.LogFactory(level="WARNING", message="just a warning", timestamp=now)
    response = operator_client.get(_widget("logs"), HTTP_HX_REQUEST="true")
    assert response.context["count"] == 2
    body = response.content.decode()
    assert "disk full" in body and "gpu lost" in body and "too old" not in body and "just a warning" not in body


def test_cameras_widget_counts_online_offline_and_flags_silent_ones(operator_client):
    now = timezone.now()
    factories.CameraFactory(id="porch", status="online", last_seen_at=now)
    factories.CameraFactory(id="yard", status="online", last_seen_at=now - dt.timedelta(hours=2))
    factories.CameraFactory(id="garage", status="offline")
    factories.CameraFactory(id="attic", status="error")
    response = operator_client.get(_widget("cameras"), HTTP_HX_REQUEST="true")
    ctx = response.context
    assert (ctx["online"], ctx["offline"], ctx["error"], ctx["total"]) == (2, 1, 1, 4)
    assert {a["camera"].pk: a["silent"] for a in ctx["attention"]} == {"yard": True, "garage": False, "attic": False}
    assert "?camera=yard" in response.content.decode()


def test_gpu_widget_without_monitorings_sampler_reads_the_table(operator_client, monkeypatch):
    """The fallback for a tree without monitoring.services.sampler: same data, straight from gpu_stats."""
    import sys

    monkeypatch.setitem(sys.modules, "monitoring.services.sampler", None)  # makes the import fail
    now = timezone.now()
    factories.GpuStatFactory(recorded_at=now - dt.timedelta(minutes=10), gpu_index=0, gpu_utilization=5)
    factories.GpuStatFactory(recorded_at=now, gpu_index=0, gpu_utilization=55, memory_used=21000, memory_total=24000)
    factories.GpuStatFactory(recorded_at=now - dt.timedelta(hours=1), gpu_index=1)
    response = operator_client.get(_widget("gpus"), HTTP_HX_REQUEST="true")
    gpus = response.context["gpus"]
    assert [(g["sample"].gpu_index, g["sample"].gpu_utilization, g["stale"]) for g in gpus] == [
        (0, 55, False),
        (1, 42.0, True),
    ]
    assert gpus[0]["memory_level"] == "warning"


def test_gpu_widget_fallback_without_samples_says_why(operator_client, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "monitoring.services.sampler", None)
    response = operator_client.get(_widget("gpus"), HTTP_HX_REQUEST="true")
    assert "No NVIDIA GPU detected: no GPU samples have been recorded" in response.content.decode()


def test_home_refuses_post(viewer_client):
    assert viewer_client.post(reverse("home")).status_code == 405
