import datetime as dt

import pytest
from django.utils import timezone

from alerting.models import Alert
from alerting.services import engine
from alerting.services.engine import evaluate_event, evaluate_rule, preview_rule, render_dedup_key
from tests import factories
from tests.alerting.helpers import make_event

pytestmark = pytest.mark.django_db

LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
RIGHT_HALF = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]


def rule(**kw):
    defaults = {"risk_threshold": None, "object_types": None, "min_confidence": None, "cooldown_seconds": 0}
    return factories.AlertRuleFactory(**{**defaults, **kw})


# --- Pure evaluation ----------------------------------------------------------------------


def test_every_condition_must_hold():
    cam = factories.CameraFactory(id="front")
    ev = make_event(cam, risk=70)
    assert evaluate_rule(rule(risk_threshold=70), ev).matched  # threshold inclusive
    assert not evaluate_rule(rule(risk_threshold=71), ev).matched
    assert evaluate_rule(rule(camera_ids=["front"]), ev).matched
    assert not evaluate_rule(rule(camera_ids=["back"]), ev).matched
    assert evaluate_rule(rule(object_types=["person", "dog"]), ev).matched
    assert not evaluate_rule(rule(object_types=["car"]), ev).matched
    assert evaluate_rule(rule(min_confidence=0.9), ev).matched
    assert not evaluate_rule(rule(min_confidence=0.95), ev).matched
    both = evaluate_rule(rule(risk_threshold=50, object_types=["car"]), ev)
    assert not both.matched
    assert both.matched_conditions == ["risk_threshold"]
    assert [c.name for c in both.failed_conditions] == ["object_types"]


def test_event_without_risk_score_fails_a_threshold():
    ev = make_event(risk=None)
    m = evaluate_rule(rule(risk_threshold=0), ev)
    assert not m.matched
    assert "no risk score" in m.reasons["risk_threshold"]


def test_rule_without_conditions_matches_everything():
    m = evaluate_rule(rule(), make_event(risk=None, detections=()))
    assert m.matched and m.conditions == []


def test_detection_conditions_must_hold_for_the_same_detection():
    # A confident car and an unsure person: "person with confidence >= 0.8" must not match.
    ev = make_event(detections=[("car", 0.95, (0, 0, 10, 10)), ("person", 0.4, (0, 0, 10, 10))])
    m = evaluate_rule(rule(object_types=["person"], min_confidence=0.8), ev)
    assert not m.matched
    assert {c.name: c.passed for c in m.conditions} == {
        "object_types": True,
        "min_confidence": True,
        "detection": False,
    }


def test_zone_match_uses_the_normalised_bbox_centre():
    cam = factories.CameraFactory()
    left = factories.CameraZoneFactory(id="left", camera=cam, coordinates=LEFT_HALF)
    right = factories.CameraZoneFactory(id="right", camera=cam, coordinates=RIGHT_HALF)
    # Box from x=700 to 900 px: centre 800/1920 = 0.42 → left half, although the box is wide.
    ev = make_event(cam, detections=[("person", 0.9, (700, 100, 200, 300))])
    m = evaluate_rule(rule(zone_ids=["left"]), ev, zones=[left, right])
    assert m.matched and m.zone_id == "left"
    assert "inside zone left" in m.reasons["zone_ids"]
    assert not evaluate_rule(rule(zone_ids=["right"]), ev, zones=[left, right]).matched


def test_disabled_or_foreign_zones_never_match():
    cam, other = factories.CameraFactory(), factories.CameraFactory()
    off = factories.CameraZoneFactory(id="off", camera=cam, coordinates=LEFT_HALF, enabled=False)
    foreign = factories.CameraZoneFactory(id="foreign", camera=other, coordinates=LEFT_HALF)
    ev = make_event(cam, detections=[("person", 0.9, (100, 100, 10, 10))])
    m = evaluate_rule(rule(zone_ids=["off", "foreign"]), ev, zones=[off, foreign])
    assert not m.matched
    assert "none of the rule's zones" in m.reasons["zone_ids"]


def test_schedule_condition_uses_the_event_start():
    # 2026-03-06 23:00 Berlin is Friday night.
    start = dt.datetime(2026, 3, 6, 22, 0, tzinfo=dt.UTC)
    ev = make_event(started_at=start)
    night = {"days": [4], "start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"}
    day = {"days": [4], "start": "08:00", "end": "18:00", "timezone": "Europe/Berlin"}
    assert evaluate_rule(rule(schedule=night), ev).matched
    m = evaluate_rule(rule(schedule=day), ev)
    assert not m.matched and "outside" in m.reasons["schedule"]


def test_fallback_to_event_object_types_without_detections():
    ev = factories.EventFactory(risk_score=80, object_types="car, person")
    assert evaluate_rule(rule(object_types=["person"]), ev).matched
    assert not evaluate_rule(rule(object_types=["person"], min_confidence=0.1), ev).matched


# --- Templates --------------------------------------------------------------------------------


def test_dedup_template_rendering():
    values = {"camera_id": "front", "rule_id": "r1", "object_type": "person", "zone_id": "porch", "severity": "high"}
    assert render_dedup_key("{camera_id}:{rule_id}", values) == "front:r1"
    assert render_dedup_key("{severity}/{object_type}@{zone_id}", values) == "high/person@porch"
    assert render_dedup_key("static", values) == "static"
    assert render_dedup_key("{zone_id}-{camera_id}", {**values, "zone_id": None}) == "-front"
    # Unknown names stay literal (the rule form rejects them before they get here).
    assert render_dedup_key("{nope}:{camera_id}", values) == "{nope}:front"
    assert len(render_dedup_key("{camera_id}" * 100, values)) == 255


def test_alert_dedup_key_uses_the_matching_detection_and_zone():
    cam = factories.CameraFactory(id="drive")
    factories.CameraZoneFactory(id="porch", camera=cam, coordinates=LEFT_HALF)
    r = rule(
        zone_ids=["porch"], object_types=["person"], dedup_key_template="{camera_id}|{object_type}|{zone_id}|{severity}"
    )
    ev = make_event(cam, detections=[("person", 0.8, (100, 100, 50, 50))])
    result = evaluate_event(ev.pk)
    alert = result.created[0]
    assert alert.dedup_key == f"drive|person|porch|{r.severity}"
    assert alert.metadata["matched_conditions"] == ["object_types", "zone_ids"]
    assert alert.metadata["zone_id"] == "porch"


# --- evaluate_event: alerts, idempotence, cooldown ---------------------------------------------------


def test_evaluate_event_creates_one_alert_per_matching_rule_with_matched_conditions():
    ev = make_event(risk=80)
    r1 = rule(risk_threshold=50, object_types=["person"], severity="critical")
    rule(risk_threshold=90)  # does not match
    rule(enabled=False)  # disabled
    result = evaluate_event(ev.pk)
    assert [a.rule_id for a in result.created] == [r1.pk]
    alert = Alert.objects.get()
    assert alert.severity == "critical" and alert.status == "pending"
    assert alert.metadata["matched_conditions"] == ["risk_threshold", "object_types"]
    assert "risk 80 ≥ 50" in alert.metadata["reasons"]["risk_threshold"]
    assert alert.dedup_key == f"{ev.camera_id}:{r1.pk}"


def test_re_evaluation_is_idempotent_even_without_cooldown():
    ev = make_event()
    rule(cooldown_seconds=0)
    evaluate_event(ev.pk)
    result = evaluate_event(ev.pk)
    assert result.created == []
    assert result.suppressed[0][2] == "already alerted for this event"
    assert Alert.objects.count() == 1


def test_cooldown_zero_alerts_for_every_event():
    cam = factories.CameraFactory()
    rule(cooldown_seconds=0)
    for _ in range(3):
        evaluate_event(make_event(cam).pk)
    assert Alert.objects.count() == 3
    assert Alert.objects.values("dedup_key").distinct().count() == 1


def test_cooldown_suppresses_same_key_until_it_expires(
    django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    cam = factories.CameraFactory()
    r = rule(cooldown_seconds=300)
    with django_capture_on_commit_callbacks(execute=True):  # committed: the engine remembers the alert
        first = evaluate_event(make_event(cam).pk)
    assert len(first.created) == 1
    event = make_event(cam)
    with django_assert_max_num_queries(1):  # the busy key is suppressed from memory: one query
        second = evaluate_event(event.pk)
    assert second.created == [] and "cooldown" in second.suppressed[0][2]
    # Another camera has another dedup key.
    assert len(evaluate_event(make_event(factories.CameraFactory()).pk).created) == 1
    # Once the earlier alert is older than the cooldown, the next one goes through.
    Alert.objects.filter(rule=r).update(created_at=timezone.now() - dt.timedelta(seconds=301))
    # Real alerts never change created_at; the engine's per-process memory of it must be reset here.
    engine.clear_cache()
    assert len(evaluate_event(make_event(cam).pk).created) == 1


def test_missing_event_returns_none():
    assert evaluate_event(987654321) is None


def test_rule_cache_sees_rule_changes():
    cam = factories.CameraFactory()
    r = rule(risk_threshold=90)
    assert evaluate_event(make_event(cam, risk=80).pk).created == []
    r.risk_threshold = 50
    r.save()
    assert len(evaluate_event(make_event(cam, risk=80).pk).created) == 1
    r.delete()
    assert evaluate_event(make_event(cam, risk=80).pk).created == []


def test_zone_edit_reaches_the_engine():
    cam = factories.CameraFactory()
    zone = factories.CameraZoneFactory(id="z1", camera=cam, coordinates=RIGHT_HALF, shape="rectangle")
    rule(zone_ids=["z1"])
    assert evaluate_event(make_event(cam, detections=[("person", 0.9, (100, 100, 10, 10))]).pk).created == []
    zone.coordinates = LEFT_HALF
    zone.save()
    assert len(evaluate_event(make_event(cam, detections=[("person", 0.9, (100, 100, 10, 10))]).pk).created) == 1


def test_preview_creates_no_alerts():
    cam = factories.CameraFactory()
    events = [make_event(cam, risk=r) for r in (20, 60, 90)]
    r = rule(risk_threshold=50, cooldown_seconds=300)
    results = preview_rule(r, [e.pk for e in reversed(events)])
    assert [(ev.id, m.matched) for ev, m in results] == [
        (events[2].pk, True),
        (events[1].pk, True),
        (events[0].pk, False),
    ]
    assert Alert.objects.count() == 0


def test_new_alert_with_channels_schedules_deliveries(django_capture_on_commit_callbacks, mailoutbox):
    rule(channels=[{"type": "email", "to": ["ops@example.com"]}])
    ev = make_event()
    with django_capture_on_commit_callbacks(execute=True):
        result = evaluate_event(ev.pk)
    alert = result.created[0]
    assert alert.channels == [{"type": "email", "to": ["ops@example.com"]}]
    assert len(mailoutbox) == 1
    alert.refresh_from_db()
    assert alert.status == "delivered" and alert.version_id == 2


def test_ruleset_indexes_rules_by_camera():
    rule(camera_ids=["a"], name="A")
    rule(name="any")
    rs = engine.load_ruleset()
    assert [r.name for r in rs.candidates("a")] == ["any", "A"]
    assert [r.name for r in rs.candidates("b")] == ["any"]


def test_cooldown_holds_for_alerts_made_by_another_process():
    cam = factories.CameraFactory()
    r = rule(cooldown_seconds=300)
    evaluate_event(make_event(cam).pk)
    engine.clear_cache()  # as if this worker had never seen that alert
    again = evaluate_event(make_event(cam).pk)
    assert again.created == [] and "cooldown" in again.suppressed[0][2]
    assert Alert.objects.filter(rule=r).count() == 1
