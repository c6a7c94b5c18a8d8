"""Django admin: every Watchpost model opens, read-only models stay read-only,
CHECK violations come back as form errors, and big-table changelists stay cheap."""

from __future__ import annotations

import itertools
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import connection
from django.urls import reverse

from alerting.models import Alert, AlertRule, CameraZone
from dashboard.admin_base import EstimatedCountPaginator, planner_estimate
from dashboard.models import Camera, Event
from monitoring.models import AuditLog, Log
from tests import factories

pytestmark = pytest.mark.django_db

WATCHPOST_APPS = {"dashboard", "monitoring", "alerting", "jobs"}
# System-written history: viewable in the admin, never editable there.
READ_ONLY = {"gpustat", "log", "auditlog", "jobtransition", "samplerstatus", "notificationdelivery"}

_hosts = itertools.count()

FACTORY_FOR = {
    "camera": factories.CameraFactory,
    "event": factories.EventFactory,
    "detection": factories.DetectionFactory,
    "eventdetection": factories.EventDetectionFactory,
    "poseresult": factories.PoseResultFactory,
    "threatdetection": factories.ThreatDetectionFactory,
    "demographicsresult": factories.DemographicsResultFactory,
    "reidembedding": factories.ReidEmbeddingFactory,
    "actionresult": factories.ActionResultFactory,
    "eventfeedback": factories.EventFeedbackFactory,
    "eventaudit": factories.EventAuditFactory,
    "gpustat": factories.GpuStatFactory,
    "log": factories.LogFactory,
    "auditlog": factories.AuditLogFactory,
    "alertrule": factories.AlertRuleFactory,
    "alert": factories.AlertFactory,
    "camerazone": factories.CameraZoneFactory,
    "activitybaseline": factories.ActivityBaselineFactory,
    "classbaseline": factories.ClassBaselineFactory,
    "job": factories.JobFactory,
    "jobattempt": factories.JobAttemptFactory,
    "joblog": factories.JobLogFactory,
    "jobtransition": factories.JobTransitionFactory,
    "exportjob": factories.ExportJobFactory,
    "backupjob": factories.BackupJobFactory,
    "restorejob": factories.RestoreJobFactory,
    # Models beyond the seed that have no factory of their own.
    "samplerstatus": lambda: _model("monitoring", "SamplerStatus").objects.create(
        host=f"gpu-box-{next(_hosts)}", reason="NVML Shared Library Not Found"
    ),
    "notificationdelivery": lambda: _model("alerting", "NotificationDelivery").objects.create(
        alert=factories.AlertFactory(), channel_type="webhook", target="https://example.com/hook"
    ),
}


def _model(app_label, name):
    from django.apps import apps

    return apps.get_model(app_label, name)


REGISTERED = sorted(
    (m._meta.app_label, m._meta.model_name) for m in admin.site._registry if m._meta.app_label in WATCHPOST_APPS
)


def test_every_watchpost_model_is_registered():
    from django.apps import apps

    models = {
        (m._meta.app_label, m._meta.model_name) for a in WATCHPOST_APPS for m in apps.get_app_config(a).get_models()
    }
    assert models - set(REGISTERED) == set(), "register these models in their app's admin.py"
    missing = {name for _, name in REGISTERED} - set(FACTORY_FOR)
    assert missing == set(), "add a factory for these models to FACTORY_FOR"


@pytest.mark.parametrize(("app_label", "model_name"), REGISTERED)
def test_admin_pages_open(admin_client_, app_label, model_name):
    obj = FACTORY_FOR[model_name]()
    changelist = admin_client_.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert changelist.status_code == 200
    # (audit_logs also holds the login row the monitoring app writes)
    assert obj.pk in {o.pk for o in changelist.context["cl"].result_list}

    add = admin_client_.get(reverse(f"admin:{app_label}_{model_name}_add"))
    assert add.status_code == (403 if model_name in READ_ONLY else 200)

    change = admin_client_.get(reverse(f"admin:{app_label}_{model_name}_change", args=[quote(obj.pk)]))
    assert change.status_code == 200
    # Read-only models open as a view page without a save button.
    assert (b'name="_save"' in change.content) is (model_name not in READ_ONLY)


class _FormFields(HTMLParser):
    """What a browser would submit for the admin's main form, unchanged."""

    def __init__(self):
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self._select = None
        self._textarea = None
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id", "").endswith("_form"):
            self._in_form = True
        if tag == "option" and self._select and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        if not self._in_form or not a.get("name"):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file") or (kind in ("checkbox", "radio") and "checked" not in a):
                return
            self.data.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "textarea":
            self._textarea = [a["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # Django renders a newline after <textarea> that browsers drop.
            name, text = self._textarea
            self.data.append((name, text[1:] if text.startswith("\n") else text))
            self._textarea = None


@pytest.mark.parametrize(("app_label", "model_name"), [r for r in REGISTERED if r[1] not in READ_ONLY])
def test_change_form_saves_unchanged(admin_client_, app_label, model_name):
    obj = FACTORY_FOR[model_name]()
    url = reverse(f"admin:{app_label}_{model_name}_change", args=[quote(obj.pk)])
    parser = _FormFields()
    parser.feed(admin_client_.get(url).content.decode())
    data: dict[str, list[str]] = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    response = admin_client_.post(url, data)
    if response.status_code != 302:
        form = response.context["adminform"].form
        pytest.fail(f"form errors: {form.errors} {[f.errors for f in response.context['inline_admin_formsets']]}")
    assert type(obj).objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize(("app_label", "model_name"), REGISTERED)
def test_changelist_queries_do_not_grow_with_rows(admin_client_, app_label, model_name):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    FACTORY_FOR[model_name]()
    admin_client_.get(url)
    with CaptureQueriesContext(connection) as one:
        admin_client_.get(url)
    for _ in range(3):
        FACTORY_FOR[model_name]()
    with CaptureQueriesContext(connection) as four:
        response = admin_client_.get(url)
    assert response.context["cl"].result_count >= 2
    assert len(four) == len(one), [q["sql"][:120] for q in four.captured_queries]


@pytest.mark.parametrize("model_name", sorted(READ_ONLY))
def test_read_only_models_refuse_changes(admin_client_, model_name):
    obj = FACTORY_FOR[model_name]()
    model = type(obj)
    app_label = model._meta.app_label
    before = model.objects.count()

    post = admin_client_.post(reverse(f"admin:{app_label}_{model_name}_change", args=[quote(obj.pk)]), {})
    delete = admin_client_.post(reverse(f"admin:{app_label}_{model_name}_delete", args=[obj.pk]), {"post": "yes"})
    add = admin_client_.post(reverse(f"admin:{app_label}_{model_name}_add"), {})

    assert (post.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    assert model.objects.count() == before


def _event_form(camera, **overrides):
    data = {
        "camera": camera.pk,
        "started_at_0": "2025-01-10",
        "started_at_1": "10:00:00",
        "risk_score": "40",
        "risk_level": "medium",
        "summary": "Person at the door",
        "reasoning": "",
        "object_types": "person",
        "notes": "",
        # inline management forms
        "eventdetection_set-TOTAL_FORMS": "0",
        "eventdetection_set-INITIAL_FORMS": "0",
        "feedback-TOTAL_FORMS": "0",
        "feedback-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_event_add_accepts_valid_form(admin_client_):
    camera = factories.CameraFactory(id="front_door")
    response = admin_client_.post(reverse("admin:dashboard_event_add"), _event_form(camera))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert Event.objects.get().risk_score == 40


def test_event_risk_score_out_of_range_is_a_form_error(admin_client_):
    camera = factories.CameraFactory(id="front_door")
    response = admin_client_.post(reverse("admin:dashboard_event_add"), _event_form(camera, risk_score="150"))
    assert response.status_code == 200
    assert "risk_score" in response.context["adminform"].form.errors
    assert b"Risk score must be between 0 and 100." in response.content
    assert not Event.objects.exists()


def test_event_change_with_bad_score_keeps_the_old_value(admin_client_):
    event = factories.EventFactory(risk_score=20)
    url = reverse("admin:dashboard_event_change", args=[event.pk])
    response = admin_client_.post(url, _event_form(event.camera, risk_score="-5"))
    assert response.status_code == 200
    assert "risk_score" in response.context["adminform"].form.errors
    event.refresh_from_db()
    assert event.risk_score == 20


def test_zone_colour_name_is_a_form_error(admin_client_):
    camera = factories.CameraFactory(id="driveway")
    data = {
        "id": "driveway_gate",
        "camera": camera.pk,
        "name": "Gate",
        "zone_type": "driveway",
        "coordinates": "[[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]",
        "shape": "rectangle",
        "color": "red",
        "enabled": "on",
        "priority": "0",
        "created_at_0": "2025-01-10",
        "created_at_1": "10:00:00",
        "updated_at_0": "2025-01-10",
        "updated_at_1": "10:00:00",
    }
    response = admin_client_.post(reverse("admin:alerting_camerazone_add"), data)
    assert response.status_code == 200
    assert "color" in response.context["adminform"].form.errors
    assert b"Colour must look like #RRGGBB." in response.content
    assert not CameraZone.objects.exists()

    data["color"] = "#22AA44"
    assert admin_client_.post(reverse("admin:alerting_camerazone_add"), data).status_code == 302
    assert CameraZone.objects.get().color == "#22AA44"


def _rule_form(**overrides):
    data = {
        "name": "Night person",
        "description": "",
        "enabled": "on",
        "severity": "high",
        "risk_threshold": "50",
        "min_confidence": "0.5",
        "object_types": '["person"]',
        "camera_ids": "null",
        "zone_ids": "null",
        "schedule": '{"days": [0, 1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00", "timezone": "UTC"}',
        "conditions": "null",
        "dedup_key_template": "{camera_id}:{rule_id}",
        "cooldown_seconds": "300",
        "channels": "null",
    }
    data.update(overrides)
    return data


def test_rule_negative_cooldown_is_a_form_error(admin_client_):
    response = admin_client_.post(reverse("admin:alerting_alertrule_add"), _rule_form(cooldown_seconds="-1"))
    assert response.status_code == 200
    assert "cooldown_seconds" in response.context["adminform"].form.errors
    assert b"Cooldown cannot be negative." in response.content
    assert not AlertRule.objects.exists()


def test_rule_unknown_placeholder_and_bad_json_are_form_errors(admin_client_):
    response = admin_client_.post(
        reverse("admin:alerting_alertrule_add"),
        _rule_form(dedup_key_template="{camera}:{rule_id}", object_types="[person"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) >= {"object_types"}
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("schedule", '{"days": [0], "start": "25:00", "end": "06:00", "timezone": "UTC"}', b"24-hour form HH:MM"),
        ("schedule", '{"days": [0], "start": "22:00", "end": "06:00", "timezone": "Mars/Olympus"}', b"timezone"),
        ("channels", '[{"type": "pager", "to": "x"}]', b"type must be email or webhook"),
        ("channels", '[{"type": "email", "to": ["not-an-address"]}]', b"not a valid email address"),
    ],
)
def test_rule_bad_schedule_or_channels_are_form_errors(admin_client_, field, value, message):
    response = admin_client_.post(reverse("admin:alerting_alertrule_add"), _rule_form(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert message in response.content
    assert not AlertRule.objects.exists()


def test_rule_valid_form_saves(admin_client_):
    response = admin_client_.post(reverse("admin:alerting_alertrule_add"), _rule_form())
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.schedule["start"] == "22:00" and rule.cooldown_seconds == 300


def test_camera_with_history_cannot_be_deleted_from_admin(admin_client_):
    event = factories.EventFactory()
    url = reverse("admin:dashboard_camera_delete", args=[event.camera_id])
    assert admin_client_.post(url, {"post": "yes"}).status_code == 403
    assert Camera.objects.filter(pk=event.camera_id).exists()

    idle = factories.CameraFactory(id="spare")
    assert (
        admin_client_.post(reverse("admin:dashboard_camera_delete", args=[idle.pk]), {"post": "yes"}).status_code == 302
    )
    assert not Camera.objects.filter(pk="spare").exists()


def test_event_search_by_id_uses_equality(admin_client_):
    events = factories.EventFactory.create_batch(3, summary="Nothing to see")
    url = reverse("admin:dashboard_event_changelist")
    response = admin_client_.get(url, {"q": str(events[1].pk)})
    assert [e.pk for e in response.context["cl"].result_list] == [events[1].pk]
    response = admin_client_.get(url, {"q": "99999999999999999999"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_log_search_uses_full_text(admin_client_):
    factories.LogFactory(message="Camera driveway went offline after timeout", component="camera")
    factories.LogFactory(message="Detector warmed up", component="detector")
    response = admin_client_.get(reverse("admin:monitoring_log_changelist"), {"q": "offline"})
    assert response.status_code == 200
    assert [log.component for log in response.context["cl"].result_list] == ["camera"]


def test_job_search_by_uuid(admin_client_):
    jobs = factories.JobFactory.create_batch(2)
    response = admin_client_.get(reverse("admin:jobs_job_changelist"), {"q": str(jobs[0].pk)})
    assert [j.pk for j in response.context["cl"].result_list] == [jobs[0].pk]
    response = admin_client_.get(reverse("admin:jobs_job_changelist"), {"q": "cleanup"})
    assert len(response.context["cl"].result_list) == 2


def test_job_change_page_shows_history_inlines(admin_client_):
    job = factories.JobFactory(status="failed")
    factories.JobAttemptFactory(job=job, status="failed", error_message="boom at step 3")
    factories.JobTransitionFactory(job=job, from_status="running", to_status="failed")
    factories.JobLogFactory(job=job, message="copying table logs")
    response = admin_client_.get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert response.status_code == 200
    for text in (b"boom at step 3", b"copying table logs", b"Job transitions"):
        assert text in response.content


def test_recent_filter_limits_by_window(admin_client_):
    from django.utils import timezone

    factories.LogFactory(timestamp=timezone.now() - timezone.timedelta(days=3), message="old")
    factories.LogFactory(message="fresh")
    url = reverse("admin:monitoring_log_changelist")
    response = admin_client_.get(url, {"timestamp_within": "24h"})
    assert [log.message for log in response.context["cl"].result_list] == ["fresh"]
    response = admin_client_.get(url, {"timestamp_within": "7d"})
    assert len(response.context["cl"].result_list) == 2


def test_logs_changelist_query_count_is_pinned(admin_client_, django_assert_num_queries):
    factories.LogFactory.create_batch(60)
    _analyze(Log)  # fresh statistics, as autovacuum keeps them: reltuples answers, no EXPLAIN
    url = reverse("admin:monitoring_log_changelist")
    admin_client_.get(url)
    # session, user, reltuples, exact count (a small table), the page.
    with django_assert_num_queries(5):
        response = admin_client_.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50
    assert response.context["cl"].result_count == 60


def test_logs_changelist_on_a_big_table_never_counts_it(admin_client_, django_assert_num_queries):
    factories.LogFactory.create_batch(3)
    _fake_reltuples(Log, 5_000_000)
    url = reverse("admin:monitoring_log_changelist")
    # session, user, reltuples, bounded count (LIMIT 10001), the page: no COUNT(*) of the table.
    with django_assert_num_queries(5) as ctx:
        response = admin_client_.get(url, {"level__exact": "INFO"})
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "LIMIT 10001" in counts[0]
    assert response.context["cl"].result_count == 3


def test_alerts_changelist_does_not_query_per_row(admin_client_, django_assert_max_num_queries):
    factories.AlertFactory.create_batch(20)
    url = reverse("admin:alerting_alert_changelist")
    admin_client_.get(url)
    with django_assert_max_num_queries(9):  # + the rule filter's rule list
        response = admin_client_.get(url)
    assert len(response.context["cl"].result_list) == 20


# --- EstimatedCountPaginator ---------------------------------------------------------


class TinyThreshold(EstimatedCountPaginator):
    exact_below = 5


def _fake_reltuples(model, value):
    """Pretend the statistics say `value` rows (needs a superuser, as the embedded server has)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("faking pg_class statistics needs a PostgreSQL superuser")
        cursor.execute("UPDATE pg_class SET reltuples = %s WHERE oid = %s::regclass", [value, model._meta.db_table])


def _analyze(model):
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")


def test_paginator_counts_exactly_below_threshold():
    factories.AuditLogFactory.create_batch(7)
    assert EstimatedCountPaginator(AuditLog.objects.all(), 50).count == 7


def test_paginator_uses_reltuples_for_unfiltered_big_tables():
    factories.AuditLogFactory.create_batch(12)
    _analyze(AuditLog)
    # Fake a stale, much larger statistic: the paginator must trust it, not count.
    _fake_reltuples(AuditLog, 2_500_000)
    assert planner_estimate(AuditLog.objects.all()) == 2_500_000
    paginator = TinyThreshold(AuditLog.objects.all(), 50)
    assert paginator.count == 2_500_000
    assert paginator.num_pages == 50_000


def test_paginator_uses_explain_for_filtered_querysets():
    factories.LogFactory.create_batch(30, level="ERROR")
    factories.LogFactory.create_batch(3, level="INFO")
    _analyze(Log)
    estimate = planner_estimate(Log.objects.filter(level="ERROR"))
    assert 15 <= estimate <= 45
    assert TinyThreshold(Log.objects.filter(level="ERROR"), 10).count == estimate


def test_paginator_replaces_a_wild_overestimate_with_the_bounded_count():
    factories.LogFactory.create_batch(3, level="INFO")
    _fake_reltuples(Log, 9_000_000)
    # 3 real rows: counting at most exact_below + 1 finds them all.
    assert TinyThreshold(Log.objects.all(), 10).count == 3


def test_admin_changelist_count_survives_a_wild_estimate(admin_client_, monkeypatch):
    factories.AlertFactory.create_batch(3)
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 5)
    _fake_reltuples(Alert, 1_000_000)
    response = admin_client_.get(reverse("admin:alerting_alert_changelist"))
    assert response.status_code == 200
    # bounded count (3) wins over the million: the page says 3.
    assert response.context["cl"].result_count == 3
    assert Alert.objects.count() == 3


def test_inline_feedback_added_changed_and_deleted_in_the_admin_is_audited(admin_client_):
    from dashboard.models import EventFeedback
    from monitoring.models import AuditLog

    event = factories.EventFactory()
    url = reverse("admin:dashboard_event_change", args=[event.pk])
    inline = {"feedback-0-feedback_type": "false_positive", "feedback-0-notes": "a cat",
              "feedback-0-expected_severity": "", "feedback-0-created_at_0": "2025-01-10",
              "feedback-0-created_at_1": "10:05:00", "feedback-0-event": str(event.pk)}  # fmt: skip
    response = admin_client_.post(url, _event_form(event.camera, **{"feedback-TOTAL_FORMS": "1", **inline}))
    assert response.status_code == 302, response.context and response.context["inline_admin_formsets"][1].formset.errors
    feedback = EventFeedback.objects.get(event=event)
    created = AuditLog.objects.get(resource_type="event_feedback", action="create")
    assert created.resource_id == str(feedback.pk) and created.details["values"]["notes"] == "a cat"

    change = {**inline, "feedback-0-id": str(feedback.pk), "feedback-0-notes": "a fox"}
    response = admin_client_.post(url, _event_form(event.camera, **{"feedback-TOTAL_FORMS": "1",
                                                                     "feedback-INITIAL_FORMS": "1", **change}))  # fmt: skip
    assert response.status_code == 302
    updated = AuditLog.objects.get(resource_type="event_feedback", action="update")
    assert updated.details["changes"]["notes"] == ["a cat", "a fox"]

    delete = {**change, "feedback-0-DELETE": "on"}
    response = admin_client_.post(url, _event_form(event.camera, **{"feedback-TOTAL_FORMS": "1",
                                                                     "feedback-INITIAL_FORMS": "1", **delete}))  # fmt: skip
    assert response.status_code == 302
    assert not EventFeedback.objects.exists()
    deleted = AuditLog.objects.get(resource_type="event_feedback", action="delete")
    assert deleted.resource_id == str(feedback.pk)
