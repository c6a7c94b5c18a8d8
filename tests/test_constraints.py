"""The database itself enforces every CHECK and UNIQUE of the seed, and every enum's value list.

Rows are written with save() / objects.create(), which skip the models' clean(),
so only PostgreSQL stands between a bad value and the table (as for rows from
COPY, psql, a restore or another service).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerting import models as am
from dashboard import models as dm
from tests import factories as f
from tests import seed_schema

pytestmark = pytest.mark.django_db

EARLIER = timezone.now() - dt.timedelta(hours=1)
LATER = timezone.now() + dt.timedelta(hours=1)

# (table, seed CHECK as written in the seed, factory, violating values, accepted boundary values)
CHECK_CASES = [
    ("audit_logs", "CHECK (status IN ('success', 'failure'))", f.AuditLogFactory, {"status": "pending"}, {"status": "failure"}),
    ("logs", "CHECK (level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'))", f.LogFactory, {"level": "info"}, {"level": "CRITICAL"}),
    ("logs", "CHECK (source IN ('backend', 'frontend'))", f.LogFactory, {"source": "cli"}, {"source": "frontend"}),
    ("alert_rules", "CHECK (risk_threshold IS NULL OR (risk_threshold >= 0 AND risk_threshold <= 100))", f.AlertRuleFactory, {"risk_threshold": 101}, {"risk_threshold": 100}),
    ("alert_rules", "CHECK (risk_threshold IS NULL OR (risk_threshold >= 0 AND risk_threshold <= 100))", f.AlertRuleFactory, {"risk_threshold": -1}, {"risk_threshold": None}),
    ("alert_rules", "CHECK (min_confidence IS NULL OR (min_confidence >= 0.0 AND min_confidence <= 1.0))", f.AlertRuleFactory, {"min_confidence": 1.01}, {"min_confidence": 1.0}),
    ("alert_rules", "CHECK (cooldown_seconds >= 0)", f.AlertRuleFactory, {"cooldown_seconds": -1}, {"cooldown_seconds": 0}),
    ("activity_baselines", "CHECK (hour >= 0 AND hour <= 23)", f.ActivityBaselineFactory, {"hour": 24}, {"hour": 23}),
    ("activity_baselines", "CHECK (day_of_week >= 0 AND day_of_week <= 6)", f.ActivityBaselineFactory, {"day_of_week": 7}, {"day_of_week": 6}),
    ("class_baselines", "CHECK (hour >= 0 AND hour <= 23)", f.ClassBaselineFactory, {"hour": -1}, {"hour": 0}),
    ("camera_zones", "CHECK (priority >= 0)", f.CameraZoneFactory, {"priority": -1}, {"priority": 0}),
    ("camera_zones", "CHECK (color ~ '^#[0-9A-Fa-f]{6}$')", f.CameraZoneFactory, {"color": "red"}, {"color": "#a1B2c3"}),
    ("camera_zones", "CHECK (color ~ '^#[0-9A-Fa-f]{6}$')", f.CameraZoneFactory, {"color": "#12345G"}, {"color": "#000000"}),
    ("jobs", "CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled'))", f.JobFactory, {"status": "paused"}, {"status": "cancelled"}),
    ("jobs", "CHECK (progress_percent >= 0 AND progress_percent <= 100)", f.JobFactory, {"progress_percent": 101}, {"progress_percent": 100}),
    ("jobs", "CHECK (priority >= 0 AND priority <= 4)", f.JobFactory, {"priority": 5}, {"priority": 4}),
    ("jobs", "CHECK (attempt_number >= 1)", f.JobFactory, {"attempt_number": 0}, {"attempt_number": 1}),
    ("jobs", "CHECK (max_attempts >= 1)", f.JobFactory, {"max_attempts": 0}, {"max_attempts": 1}),
    ("jobs", "CHECK (completed_at IS NULL OR completed_at >= created_at)", f.JobFactory, {"completed_at": EARLIER - dt.timedelta(hours=1), "created_at": EARLIER}, {"completed_at": EARLIER, "created_at": EARLIER}),
    ("jobs", "CHECK (started_at IS NULL OR started_at >= created_at)", f.JobFactory, {"started_at": EARLIER - dt.timedelta(seconds=1), "created_at": EARLIER}, {"started_at": LATER, "created_at": EARLIER}),
    ("job_attempts", "CHECK (status IN ('started', 'succeeded', 'failed', 'cancelled'))", f.JobAttemptFactory, {"status": "running"}, {"status": "succeeded"}),
    ("job_attempts", "CHECK (attempt_number >= 1)", f.JobAttemptFactory, {"attempt_number": 0}, {"attempt_number": 1}),
    ("job_attempts", "CHECK (ended_at IS NULL OR ended_at >= started_at)", f.JobAttemptFactory, {"started_at": EARLIER, "ended_at": EARLIER - dt.timedelta(seconds=1)}, {"started_at": EARLIER, "ended_at": EARLIER}),
    ("job_logs", "CHECK (level IN ('debug', 'info', 'warning', 'error'))", f.JobLogFactory, {"level": "critical"}, {"level": "debug"}),
    ("job_logs", "CHECK (attempt_number >= 1)", f.JobLogFactory, {"attempt_number": 0}, {"attempt_number": 1}),
    ("export_jobs", "CHECK (progress_percent >= 0 AND progress_percent <= 100)", f.ExportJobFactory, {"progress_percent": -1}, {"progress_percent": 0}),
    ("export_jobs", "CHECK (processed_items >= 0)", f.ExportJobFactory, {"processed_items": -1}, {"processed_items": 0}),
    ("export_jobs", "CHECK (total_items IS NULL OR total_items >= 0)", f.ExportJobFactory, {"total_items": -1}, {"total_items": 0}),
    ("export_jobs", "CHECK (output_size_bytes IS NULL OR output_size_bytes >= 0)", f.ExportJobFactory, {"output_size_bytes": -1}, {"output_size_bytes": 5 * 2**30}),
    ("export_jobs", "CHECK (download_count >= 0)", f.ExportJobFactory, {"download_count": -1}, {"download_count": 0}),
    ("export_jobs", "CHECK (retention_days IS NULL OR retention_days > 0)", f.ExportJobFactory, {"retention_days": 0}, {"retention_days": 1}),
    ("backup_jobs", "CHECK (progress_percent >= 0 AND progress_percent <= 100)", f.BackupJobFactory, {"progress_percent": 101}, {"progress_percent": 100}),
    ("restore_jobs", "CHECK (progress_percent >= 0 AND progress_percent <= 100)", f.RestoreJobFactory, {"progress_percent": -5}, {"progress_percent": 0}),
    ("event_feedback", "CHECK (feedback_type IN ('accurate', 'correct', 'false_positive', 'missed_threat', 'severity_wrong'))", f.EventFeedbackFactory, {"feedback_type": "wrong"}, {"feedback_type": "severity_wrong"}),
    ("event_feedback", "CHECK (expected_severity IS NULL OR expected_severity IN ('low', 'medium', 'high', 'critical'))", f.EventFeedbackFactory, {"expected_severity": "extreme"}, {"expected_severity": "critical"}),
    ("event_audits", "CHECK (enrichment_utilization >= 0.0 AND enrichment_utilization <= 1.0)", f.EventAuditFactory, {"enrichment_utilization": 1.5}, {"enrichment_utilization": 0.0}),
    ("event_audits", "CHECK (context_usage_score IS NULL OR (context_usage_score >= 1.0 AND context_usage_score <= 5.0))", f.EventAuditFactory, {"context_usage_score": 0.5}, {"context_usage_score": 1.0}),
    ("event_audits", "CHECK (reasoning_coherence_score IS NULL OR (reasoning_coherence_score >= 1.0 AND reasoning_coherence_score <= 5.0))", f.EventAuditFactory, {"reasoning_coherence_score": 5.5}, {"reasoning_coherence_score": 5.0}),
    ("event_audits", "CHECK (risk_justification_score IS NULL OR (risk_justification_score >= 1.0 AND risk_justification_score <= 5.0))", f.EventAuditFactory, {"risk_justification_score": 0.0}, {"risk_justification_score": None}),
    ("event_audits", "CHECK (consistency_score IS NULL OR (consistency_score >= 1.0 AND consistency_score <= 5.0))", f.EventAuditFactory, {"consistency_score": 6.0}, {"consistency_score": 3.3}),
    ("event_audits", "CHECK (overall_quality_score IS NULL OR (overall_quality_score >= 1.0 AND overall_quality_score <= 5.0))", f.EventAuditFactory, {"overall_quality_score": -1.0}, {"overall_quality_score": 5.0}),
]  # fmt: skip


def _case_id(case):
    table, _, _, bad, _ = case
    return f"{table}-" + "-".join(f"{k}={v}" for k, v in bad.items() if not isinstance(v, dt.datetime)) or table


def _create(factory, **values):
    """Create through the factory but with the plain ORM save (no full_clean), as any writer could."""
    return factory(**values)


@pytest.mark.parametrize(
    ("table", "seed_check", "factory", "bad", "good"), CHECK_CASES, ids=[_case_id(c) for c in CHECK_CASES]
)
def test_seed_check_is_enforced_by_the_database(table, seed_check, factory, bad, good):
    with pytest.raises(IntegrityError), transaction.atomic():
        _create(factory, **bad)
    obj = _create(factory, **good)
    assert obj._meta.db_table == table
    obj.refresh_from_db()
    for field, value in good.items():
        assert getattr(obj, field) == value


def test_every_seed_check_has_a_case():
    tables = seed_schema.load()
    if tables is None:
        pytest.skip("seed file not found (WATCHPOST_SEED_FILE or ../shared/seed/)")
    covered = {(t, seed_schema.check_atoms(c)) for t, c, *_ in CHECK_CASES}
    missing = [
        (t.name, c) for t in tables.values() for c in t.checks if (t.name, seed_schema.check_atoms(c)) not in covered
    ]
    assert missing == []


def test_check_violation_via_raw_sql_is_refused():
    """Not only the ORM: an INSERT from psql or another service meets the same CHECK."""
    from django.db import connection

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO alert_rules (id, name, enabled, severity, dedup_key_template, cooldown_seconds, created_at, updated_at)"
            " VALUES (gen_random_uuid(), 'raw', true, 'high', '{camera_id}', -5, now(), now())"
        )
    with connection.cursor() as cur:
        # Every other column takes its database default (seed defaults are db_default too).
        cur.execute(
            "INSERT INTO alert_rules (id, name) VALUES (gen_random_uuid(), 'raw defaults') RETURNING cooldown_seconds, severity, enabled"
        )
        assert cur.fetchone() == (300, "medium", True)


# --- enum columns (ENUM in the seed: varchar + CHECK here) ------------------------------------

ENUM_CASES = [
    ("alerts", "severity", f.AlertFactory, "severe"),
    ("alerts", "status", f.AlertFactory, "open"),
    ("alert_rules", "severity", f.AlertRuleFactory, "urgent"),
    ("camera_zones", "zone_type", f.CameraZoneFactory, "garden"),
    ("camera_zones", "shape", f.CameraZoneFactory, "circle"),
    ("export_jobs", "status", f.ExportJobFactory, "cancelled"),
    ("backup_jobs", "status", f.BackupJobFactory, "queued"),
    ("restore_jobs", "status", f.RestoreJobFactory, "running"),
    # Columns with a fixed value list the seed describes in words.
    ("job_transitions", "triggered_by", f.JobTransitionFactory, "cron"),
    ("threat_detections", "severity", f.ThreatDetectionFactory, "extreme"),
    ("cameras", "status", f.CameraFactory, "sleeping"),
    ("events", "risk_level", f.EventFactory, "extreme"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "column", "factory", "value"), ENUM_CASES, ids=[f"{t}.{c}" for t, c, *_ in ENUM_CASES]
)
def test_enum_column_rejects_unknown_value(table, column, factory, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        obj = factory(**{column: value})
        if column == "risk_level":  # Event.save() derives risk_level only when it is empty
            assert obj.risk_level == value
    model_field = next(fl for fl in _model_for(table)._meta.fields if fl.column == column)
    for allowed in [c[0] for c in model_field.choices]:
        with transaction.atomic():
            factory(**{column: allowed})


def _model_for(table):
    from django.apps import apps

    return next(m for m in apps.get_models() if m._meta.db_table == table)


def test_every_seed_enum_column_has_a_case():
    tables = seed_schema.load()
    if tables is None:
        pytest.skip("seed file not found (WATCHPOST_SEED_FILE or ../shared/seed/)")
    covered = {(t, c) for t, c, *_ in ENUM_CASES}
    enums = {(t.name, name) for t in tables.values() for name, col in t.columns.items() if col.type == "ENUM"}
    assert enums - covered == set()


# --- UNIQUE --------------------------------------------------------------------------------------


def _twice(model, **values):
    model.objects.create(**values)
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.create(**values)


def test_one_feedback_per_event():
    event = f.EventFactory()
    f.EventFeedbackFactory(event=event)
    with pytest.raises(IntegrityError), transaction.atomic():
        f.EventFeedbackFactory(event=event, feedback_type="false_positive")
    assert dm.EventFeedback.objects.filter(event=event).count() == 1


def test_one_audit_per_event():
    event = f.EventFactory()
    f.EventAuditFactory(event=event)
    with pytest.raises(IntegrityError), transaction.atomic():
        f.EventAuditFactory(event=event)
    assert dm.EventAudit.objects.filter(event=event).count() == 1


def test_activity_baseline_slot_is_unique():
    camera = f.CameraFactory()
    # objects.create, not the factory: the factory get_or_creates on the slot.
    _twice(am.ActivityBaseline, camera=camera, hour=3, day_of_week=2, avg_count=1.0)
    am.ActivityBaseline.objects.create(camera=camera, hour=3, day_of_week=3)  # another slot is fine


def test_class_baseline_slot_is_unique():
    camera = f.CameraFactory()
    _twice(am.ClassBaseline, camera=camera, detection_class="person", hour=7)
    am.ClassBaseline.objects.create(camera=camera, detection_class="car", hour=7)


@pytest.mark.parametrize(
    "factory",
    [f.PoseResultFactory, f.DemographicsResultFactory, f.ReidEmbeddingFactory, f.ActionResultFactory],
    ids=["pose_results", "demographics_results", "reid_embeddings", "action_results"],
)
def test_one_enrichment_result_per_detection(factory):
    detection = f.DetectionFactory()
    factory(detection=detection)
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(detection=detection)


def test_threats_may_repeat_per_detection():
    """threat_detections is the one enrichment table without "(unique)": a frame can hold two weapons."""
    detection = f.DetectionFactory()
    f.ThreatDetectionFactory(detection=detection, threat_type="knife")
    f.ThreatDetectionFactory(detection=detection, threat_type="gun")
    assert dm.ThreatDetection.objects.filter(detection=detection).count() == 2
