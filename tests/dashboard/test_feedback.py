"""Feedback on an event (one per event; a second submission edits) and the feedback statistics page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.models import EventFeedback
from monitoring.models import AuditLog
from tests import factories


def _url(event):
    return reverse("dashboard:event_feedback", args=[event.pk])


def test_feedback_is_created_from_the_event_page(operator_client, db):
    event = factories.EventFactory()
    response = operator_client.post(
        _url(event), {"feedback_type": "severity_wrong", "expected_severity": "low", "notes": " Only a cat "}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:event_detail", args=[event.pk])
    feedback = EventFeedback.objects.get(event=event)
    assert (feedback.feedback_type, feedback.expected_severity, feedback.notes) == (
        "severity_wrong",
        "low",
        "Only a cat",
    )
    audit = AuditLog.objects.get(resource_type="event_feedback")
    assert audit.action == "create" and audit.resource_id == str(feedback.pk)
    assert audit.details["event_id"] == event.pk
    assert audit.details["changes"]["feedback_type"] == [None, "severity_wrong"]


def test_second_submission_edits_the_existing_feedback(operator_client, db):
    event = factories.EventFactory()
    existing = factories.EventFeedbackFactory(event=event, feedback_type="accurate", notes="fine")
    response = operator_client.post(
        _url(event),
        {"feedback_type": "false_positive", "expected_severity": "", "notes": "fine"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Feedback updated." in body and 'id="event-feedback"' in body and "<html" not in body
    assert EventFeedback.objects.filter(event=event).count() == 1
    existing.refresh_from_db()
    assert existing.feedback_type == "false_positive" and existing.expected_severity is None
    audit = AuditLog.objects.get(resource_type="event_feedback")
    assert audit.action == "update"
    assert audit.details["changes"] == {"feedback_type": ["accurate", "false_positive"]}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"feedback_type": "great", "expected_severity": ""}, "Select a valid choice"),
        ({"feedback_type": "accurate", "expected_severity": "apocalyptic"}, "Select a valid choice"),
        ({"feedback_type": ""}, "This field is required"),
        ({"feedback_type": "accurate", "notes": "x" * 5001}, "at most 5000 characters"),
    ],
)
def test_invalid_feedback_is_a_form_error_and_saves_nothing(operator_client, db, data, message):
    event = factories.EventFactory()
    existing = factories.EventFeedbackFactory(event=event, feedback_type="accurate", notes="keep me")
    for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = operator_client.post(_url(event), data, **extra)
        assert response.status_code == 200
        assert message in response.content.decode()
    existing.refresh_from_db()
    assert (existing.feedback_type, existing.notes) == ("accurate", "keep me")
    assert not AuditLog.objects.filter(resource_type="event_feedback").exists()


def test_feedback_is_operator_only(viewer_client, db):
    event = factories.EventFactory()
    response = viewer_client.post(_url(event), {"feedback_type": "accurate"})
    assert response.status_code == 403
    assert not EventFeedback.objects.exists()


def test_feedback_for_missing_event_is_404(operator_client, db):
    response = operator_client.post(reverse("dashboard:event_feedback", args=[999999]), {"feedback_type": "accurate"})
    assert response.status_code == 404
    assert not EventFeedback.objects.exists()


def test_detail_form_is_prefilled_with_existing_feedback(operator_client, db):
    event = factories.EventFactory()
    factories.EventFeedbackFactory(event=event, feedback_type="missed_threat", expected_severity="critical")
    response = operator_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    form = response.context["feedback_form"]
    assert form.initial["feedback_type"] == "missed_threat" and form.initial["expected_severity"] == "critical"
    assert "Update feedback" in response.content.decode()


# --- statistics page -------------------------------------------------------------------


def _feedback(camera, kind, days_ago):
    fb = factories.EventFeedbackFactory(event=factories.EventFactory(camera=camera), feedback_type=kind)
    EventFeedback.objects.filter(pk=fb.pk).update(created_at=timezone.now() - dt.timedelta(days=days_ago))
    return fb


def test_feedback_stats_by_type_camera_and_week(operator_client, db, django_assert_num_queries):
    porch = factories.CameraFactory(id="porch", name="Porch")
    yard = factories.CameraFactory(id="yard", name="Yard")
    _feedback(porch, "false_positive", 1)
    _feedback(porch, "accurate", 1)
    _feedback(yard, "false_positive", 1)
    _feedback(yard, "false_positive", 15)
    _feedback(yard, "accurate", 400)  # outside the 12-week window
    # session, user, group + the counts (rollup, plus raw rows of the window's first partial bucket) + camera names.
    with django_assert_num_queries(5):
        response = operator_client.get(reverse("dashboard:feedback_stats"))
    assert response.status_code == 200
    ctx = response.context
    assert ctx["total"] == 4
    by_type = {row["type"]: row["count"] for row in ctx["by_type"]}
    assert by_type == {"accurate": 1, "correct": 0, "false_positive": 3, "missed_threat": 0, "severity_wrong": 0}
    by_camera = {row["event__camera_id"]: (row["total"], row["false_positives"]) for row in ctx["by_camera"]}
    assert by_camera == {"porch": (2, 1), "yard": (2, 2)}
    assert sum(row["total"] for row in ctx["by_week"]) == 4
    assert all(row["week"].weekday() == 0 for row in ctx["by_week"])  # date_trunc('week') starts on Monday
    assert ctx["by_week"][-1]["fp_rate"] == pytest.approx(
        ctx["by_week"][-1]["false_positives"] / ctx["by_week"][-1]["total"]
    )
    assert "Porch" in response.content.decode()


def test_feedback_stats_window_is_validated(operator_client, db):
    response = operator_client.get(reverse("dashboard:feedback_stats"), {"weeks": "0"})
    assert response.status_code == 200
    assert response.context["weeks"] == 12
    assert "Showing the last 12 weeks." in response.content.decode()
    response = operator_client.get(reverse("dashboard:feedback_stats"), {"weeks": "60"})
    assert response.context["weeks"] == 60
