"""Concurrency: many threads, each with its own database connection, racing on the same rows.

A barrier releases the threads together so the races really happen; every
thread closes its connection at the end (Django opens one per thread).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from alerting.models import Alert
from alerting.services import alerts as alert_service
from alerting.services import engine
from jobs.choices import JobStatus, RestoreStatus
from jobs.models import RestoreJob
from jobs.services import backup as backup_service
from jobs.services import lifecycle
from monitoring.models import AuditLog, GpuStat
from monitoring.services.nvml_fake import FakeNVML
from monitoring.services.sampler import GpuSampler, run_sampler
from tests import factories
from tests.reliability.conftest import wait_for
from tests.reliability.data import seed_events, table_checksums

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def race(n: int, fn, *args) -> list:
    """Run fn(i, *args) in n threads released at once; returns results (or the exception raised) in order."""
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout=30)
            return fn(i, *args)
        except Exception as exc:  # collected, so the test can assert on refusals
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture(autouse=True)
def _fresh_rule_cache():
    engine.clear_cache()
    yield
    engine.clear_cache()


def _alert_counts() -> Counter:
    return Counter(Alert.objects.values_list("rule__name", "dedup_key"))


# --- alerts ---------------------------------------------------------------------------------------------


def test_twenty_threads_evaluating_one_event_create_one_alert_per_rule_and_key():
    camera = factories.CameraFactory(id="gate")
    event = factories.EventFactory(camera=camera, risk_score=90, object_types="person")
    factories.EventDetectionFactory(event=event, detection__object_type="person", detection__confidence=0.9)
    factories.EventDetectionFactory(event=event, detection__object_type="car", detection__confidence=0.8)
    # Rules made after the event, so its own post-save evaluation found none.
    rules = [
        factories.AlertRuleFactory(name="no cooldown", cooldown_seconds=0, object_types=None),
        factories.AlertRuleFactory(name="cooldown", cooldown_seconds=300, object_types=["person"]),
        factories.AlertRuleFactory(
            name="per class", cooldown_seconds=0, object_types=["car"], dedup_key_template="{camera_id}:{object_type}"
        ),  # fmt: skip
    ]
    assert not Alert.objects.exists()

    results = race(20, lambda i: engine.evaluate_event(event.pk))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert _alert_counts() == {
        ("no cooldown", f"gate:{rules[0].pk}"): 1,
        ("cooldown", f"gate:{rules[1].pk}"): 1,
        ("per class", "gate:car"): 1,
    }
    created = sum(len(r.created) for r in results)
    assert created == 3  # the other 19 evaluations each saw the committed alerts and created none


def test_twenty_threads_on_twenty_events_respect_the_cooldown_per_dedup_key():
    camera = factories.CameraFactory(id="yard")
    events = [factories.EventFactory(camera=camera, risk_score=80, object_types="person") for _ in range(20)]
    cooldown = factories.AlertRuleFactory(name="cooldown", cooldown_seconds=600, object_types=None, min_confidence=None)
    every = factories.AlertRuleFactory(name="every event", cooldown_seconds=0, object_types=None, min_confidence=None)

    results = race(20, lambda i: engine.evaluate_event(events[i].pk))

    assert not [r for r in results if isinstance(r, Exception)], results
    counts = _alert_counts()
    # One key for the whole camera: the cooldown admits exactly one alert, whoever wins the race.
    assert counts[("cooldown", f"yard:{cooldown.pk}")] == 1
    # Without a cooldown every event gets its own alert, and never two.
    assert counts[("every event", f"yard:{every.pk}")] == 20
    assert Alert.objects.filter(rule=every).values("event").distinct().count() == 20


def test_two_operators_acknowledging_one_alert_one_wins_one_sees_the_conflict():
    users = [factories.UserFactory(username=f"op{i}", role="operator") for i in range(2)]
    for round_ in range(3):
        alert = factories.AlertFactory()
        assert alert.version_id == 1

        def acknowledge(i, alert=alert):
            client = Client()
            client.force_login(users[i])
            url = reverse("alerting:alert_action", args=[alert.pk, "acknowledge"])
            return client.post(url, {"version": "1"}, HTTP_HX_REQUEST="true")

        responses = race(2, acknowledge)
        assert not [r for r in responses if isinstance(r, Exception)], responses
        assert sorted(r.status_code for r in responses) == [200, 409], f"round {round_}"
        loser = next(r for r in responses if r.status_code == 409)
        assert alert_service.CONFLICT_MESSAGE in loser.content.decode()
        alert.refresh_from_db()
        assert alert.status == "acknowledged"
        assert alert.version_id == 2  # bumped once, not twice
        audit = AuditLog.objects.filter(resource_id=str(alert.pk), action="alert.acknowledge")
        assert sorted(audit.values_list("status", flat=True)) == ["failure", "success"]


# --- restores ---------------------------------------------------------------------------------------------


def _blocked_truncate() -> bool:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'TRUNCATE %%'"
        )
        return cur.fetchone()[0] > 0


def test_second_restore_is_refused_while_the_first_runs(settings, tmp_path, operator_client):
    settings.UPLOAD_DIR = tmp_path
    seed_events(200, text_len=64, detections=True)
    backup_service.write_backup(tmp_path / "first.zip")
    (tmp_path / "second.zip").write_bytes((tmp_path / "first.zip").read_bytes())
    snapshot = table_checksums(backup_service.BACKUP_TABLES)
    with connection.cursor() as cur:
        cur.execute("DELETE FROM event_detections")
    first = backup_service.create_restore("first.zip", created_by="op0", dispatch=False)
    second = backup_service.create_restore("second.zip", created_by="op1", dispatch=False)

    # Another session reading a restored table makes the first restore wait inside its
    # transaction (advisory lock held, TRUNCATE queued), i.e. "while the first runs".
    reader = connections.create_connection("default")
    reader.ensure_connection()
    try:
        reader.set_autocommit(False)
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM class_baselines")
        outcome = {}
        runner = threading.Thread(
            target=lambda: (outcome.update(first=lifecycle.run_job(first.job_id)), connections.close_all())
        )
        runner.start()
        wait_for(_blocked_truncate, 30, 0.05, "the first restore to be inside its transaction")

        assert lifecycle.run_job(second.job_id) == "failed"
        second.refresh_from_db()
        assert second.status == RestoreStatus.FAILED
        assert "Another restore is running" in second.error_message
        assert second.job.status == JobStatus.FAILED  # RestoreRefused: no retry of a refusal

        # The upload form refuses a third one up front.
        upload = SimpleUploadedFile("third.zip", b"PK\x05\x06" + bytes(18), content_type="application/zip")
        response = operator_client.post(reverse("jobs:restore_upload"), {"archive": upload, "confirm": "on"})
        assert response.status_code == 409
        assert "Another restore is still running" in response.content.decode()
    finally:
        reader.rollback()
        reader.close()
        runner.join(timeout=60)
    assert outcome.get("first") == "completed"
    assert RestoreJob.objects.get(pk=first.pk).status == RestoreStatus.COMPLETED
    assert table_checksums(backup_service.BACKUP_TABLES) == snapshot


# --- GPU sampler --------------------------------------------------------------------------------------------


def test_two_samplers_on_one_host_only_one_runs():
    nvml = FakeNVML.with_gpus(1)
    outcome = {}

    def first():
        try:
            outcome["first"] = run_sampler(duration=4, interval=0.5, sampler=GpuSampler(nvml, host="rel-host"))
        finally:
            connections.close_all()

    runner = threading.Thread(target=first)
    runner.start()
    try:
        wait_for(lambda: GpuStat.objects.filter(host="rel-host").exists(), 30, 0.05, "the first sampler to sample")
        # A second sampler on the same host, while the first one runs: it must not start.
        second = run_sampler(duration=4, interval=0.5, sampler=GpuSampler(nvml, host="rel-host"))
        assert second["skipped"] is True and second["ticks"] == 0
        # A sampler of another host is not held back by it.
        other = run_sampler(duration=0.5, interval=0.5, sampler=GpuSampler(nvml, host="rel-other-host"))
        assert other["skipped"] is False and other["stored"] == 1
    finally:
        runner.join(timeout=60)
    first_run = outcome["first"]
    assert first_run["skipped"] is False
    assert first_run["stored"] == first_run["ticks"] >= 6
    # Every stored row comes from the one sampler that ran: one per tick, none doubled.
    rows = GpuStat.objects.filter(host="rel-host")
    assert rows.count() == first_run["stored"]
    assert rows.values("recorded_at").distinct().count() == first_run["stored"]
