"""Event detail: everything about one event in a bounded number of queries; review toggle and notes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dashboard.models import Event
from monitoring.models import AuditLog
from tests import factories

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def rich_event(db, media):
    """An event with three detections carrying every kind of enrichment, two zones, alerts, feedback, audit."""
    camera = factories.CameraFactory(id="porch", name="Porch")
    event = factories.EventFactory(camera=camera, risk_score=72, summary="Person at the door", reasoning="Late hour.")
    (media / "porch").mkdir()
    (media / "porch" / "frame1.png").write_bytes(PNG)
    # Porch zone covers the left half; the detection box centre (900, 600)/(1920, 1080) lies inside it.
    porch = factories.CameraZoneFactory(
        id="porch_step", camera=camera, name="Porch step", coordinates=[[0, 0], [0.6, 0], [0.6, 1], [0, 1]]
    )
    factories.CameraZoneFactory(
        id="far_right", camera=camera, name="Far right", coordinates=[[0.9, 0], [1, 0], [1, 1], [0.9, 1]]
    )
    factories.CameraZoneFactory(id="disabled_zone", camera=camera, name="Disabled", enabled=False)
    detections = []
    for i in range(3):
        det = factories.DetectionFactory(camera=camera, file_path="porch/frame1.png" if i == 0 else f"missing{i}.png")
        factories.EventDetectionFactory(event=event, detection=det)
        factories.PoseResultFactory(detection=det, is_suspicious=i == 0)
        factories.ThreatDetectionFactory(detection=det)
        factories.ThreatDetectionFactory(detection=det, threat_type="gun", severity="critical")
        factories.DemographicsResultFactory(detection=det)
        factories.ActionResultFactory(detection=det)
        factories.ReidEmbeddingFactory(detection=det)
        detections.append(det)
    rule = factories.AlertRuleFactory(name="Night porch")
    factories.AlertFactory(event=event, rule=rule)
    factories.AlertFactory(event=event, rule=factories.AlertRuleFactory(name="Any person"), severity="critical")
    factories.EventFeedbackFactory(event=event, feedback_type="false_positive", notes="Postman")
    factories.EventAuditFactory(event=event, self_eval_critique="Ignored the zone data.", has_zones=True)
    return event, detections, porch


def test_detail_shows_everything_about_the_event(operator_client, rich_event):
    event, detections, porch = rich_event
    response = operator_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Person at the door" in body and "Late hour." in body
    assert body.count('class="events-bbox"') == 3
    # Frame only for the detection whose file exists under MEDIA_ROOT; placeholders for the others.
    assert reverse("dashboard:detection_frame", args=[detections[0].pk]) in body
    assert body.count("No frame stored") == 2
    # Pose keypoints (confidence 0.9) are drawn.
    assert body.count('class="events-keypoint"') == 3 * 17
    assert 'class="events-skeleton"' in body
    # Zones: the first enabled zone contains the box centre, the far-right one does not.
    views = response.context["detections"]
    assert [[z.pk for z in v.zones] for v in views] == [["porch_step"]] * 3
    assert "Disabled" not in body
    assert "gun" in body and '<span class="badge critical">Critical</span>' in body
    assert "21-30" in body and "walking" in body
    assert body.count("Find similar") == 3
    assert "Night porch" in body and "Any person" in body
    assert "Ignored the zone data." in body
    assert "False positive" in body and "Postman" in body


def test_detail_query_count_is_bounded(operator_client, rich_event, django_assert_max_num_queries):
    event, _, _ = rich_event
    with django_assert_max_num_queries(15):
        response = operator_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    assert response.status_code == 200


def test_detail_query_count_does_not_grow_with_detections(operator_client, rich_event, django_assert_max_num_queries):
    event, _, _ = rich_event
    for _ in range(10):
        det = factories.DetectionFactory(camera=event.camera)
        factories.EventDetectionFactory(event=event, detection=det)
        factories.PoseResultFactory(detection=det)
        factories.ThreatDetectionFactory(detection=det)
    with django_assert_max_num_queries(15):
        response = operator_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    assert len(response.context["detections"]) == 13


def test_detail_of_missing_event_is_404(operator_client, db):
    assert operator_client.get(reverse("dashboard:event_detail", args=[999999])).status_code == 404


def test_detail_of_bare_event_renders(viewer_client, db):
    event = factories.EventFactory(risk_score=None, risk_level=None)
    response = viewer_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "no linked detections" in body and "has not been audited" in body
    assert "Only operators can change the review." in body


def test_pixel_keypoints_are_drawn_where_they_are(operator_client, db):
    event = factories.EventFactory()
    det = factories.DetectionFactory(camera=event.camera)
    factories.EventDetectionFactory(event=event, detection=det)
    factories.PoseResultFactory(detection=det, keypoints=[[900, 500, 0.9]] + [[0, 0, 0.1]] * 16)
    response = operator_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    view = response.context["detections"][0]
    assert view.keypoints == [(900.0, 500.0, 0.9)]
    assert view.skeleton == []


def test_frame_is_served_only_from_media_root(operator_client, rich_event, media, tmp_path):
    _, detections, _ = rich_event
    response = operator_client.get(reverse("dashboard:detection_frame", args=[detections[0].pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    (tmp_path / "secret.png").write_bytes(PNG)
    escaping = factories.DetectionFactory(file_path="../secret.png")
    absolute = factories.DetectionFactory(file_path=str(tmp_path / "secret.png"))
    for det in (escaping, absolute, detections[1]):
        assert operator_client.get(reverse("dashboard:detection_frame", args=[det.pk])).status_code == 404


def test_review_toggle_and_notes_are_saved_and_audited(operator_client, db):
    event = factories.EventFactory(reviewed=False)
    url = reverse("dashboard:event_review", args=[event.pk])
    response = operator_client.post(url, {"reviewed": "on", "notes": "  Checked the clip.  "})
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.reviewed is True and event.notes == "Checked the clip."
    audit = AuditLog.objects.get(action="review", resource_type="event")
    assert audit.resource_id == str(event.pk)
    assert audit.details["changes"] == {"reviewed": [False, True], "notes": [None, "Checked the clip."]}
    # Unticking via HTMX returns the review card only.
    response = operator_client.post(url, {"notes": "Checked the clip."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="event-review"' in response.content.decode() and "<html" not in response.content.decode()
    event.refresh_from_db()
    assert event.reviewed is False
    assert AuditLog.objects.filter(action="review").count() == 2


def test_review_is_operator_only(viewer_client, db):
    event = factories.EventFactory(reviewed=False, notes=None)
    response = viewer_client.post(reverse("dashboard:event_review", args=[event.pk]), {"reviewed": "on"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.reviewed is False
    assert not AuditLog.objects.filter(resource_type="event").exists()


def test_review_with_overlong_notes_is_a_form_error(operator_client, db):
    event = factories.EventFactory(reviewed=False, notes=None)
    response = operator_client.post(
        reverse("dashboard:event_review", args=[event.pk]), {"reviewed": "on", "notes": "x" * 5001}
    )
    assert response.status_code == 200
    assert "at most 5000 characters" in response.content.decode()
    assert Event.objects.get(pk=event.pk).reviewed is False
    assert not AuditLog.objects.filter(resource_type="event").exists()


def test_get_on_review_is_not_allowed(operator_client, db):
    event = factories.EventFactory()
    assert operator_client.get(reverse("dashboard:event_review", args=[event.pk])).status_code == 405


def test_anomaly_score_is_shown_when_the_alerting_app_offers_one(
    operator_client, rich_event, django_assert_max_num_queries
):
    baselines = pytest.importorskip("alerting.services.baselines")
    event, _, _ = rich_event
    dow, hour = baselines.slot_of(baselines.local_hour_start(event.started_at))
    factories.ActivityBaselineFactory(
        camera=event.camera, day_of_week=dow, hour=hour, avg_count=0.5, sample_count=10_000
    )
    expected = baselines.anomaly_score_for_event(event)
    assert expected is not None
    with django_assert_max_num_queries(15):
        response = operator_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    assert response.context["anomaly"] == pytest.approx(expected)
    assert "Anomaly score" in response.content.decode()
