import pytest
from django.urls import reverse

from alerting.models import AlertRule
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def valid_data(**over):
    data = {
        "name": "Night person",
        "description": "",
        "enabled": "on",
        "severity": "high",
        "risk_threshold": "50",
        "min_confidence": "0.6",
        "object_types": ["person"],
        "dedup_key_template": "{camera_id}:{rule_id}",
        "cooldown_seconds": "300",
        "email_to": "",
        "webhooks": "",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def test_rules_list_filters_and_search(viewer_client):
    factories.AlertRuleFactory(name="Porch night", severity="high", enabled=True)
    factories.AlertRuleFactory(name="Garage day", severity="low", enabled=False)
    url = reverse("alerting:rules")
    names = lambda resp: [r.name for r in resp.context["rules"]]  # noqa: E731
    assert names(viewer_client.get(url)) == ["Garage day", "Porch night"]
    assert names(viewer_client.get(url, {"enabled": "false"})) == ["Garage day"]
    assert names(viewer_client.get(url, {"severity": ["high", "critical"]})) == ["Porch night"]
    assert names(viewer_client.get(url, {"q": "porch"})) == ["Porch night"]
    resp = viewer_client.get(url, {"q": "porch"}, HTTP_HX_TARGET="rule-list", **HTMX)
    assert resp.content.decode().startswith('<div id="rule-list">')


def test_rules_list_refuses_a_bad_filter_with_a_message(viewer_client):
    factories.AlertRuleFactory(name="Porch night", severity="high", enabled=True)
    url = reverse("alerting:rules")
    for bad, label in (({"enabled": "maybe"}, "Enabled"), ({"severity": "apocalyptic"}, "Severity")):
        resp = viewer_client.get(url, bad)
        assert resp.status_code == 200 and resp.context["rules"] == []
        body = resp.content.decode()
        assert "Please correct the filters" in body and f"<li>{label}: Select a valid choice." in body
        assert "Porch night" not in body
    resp = viewer_client.get(url, {"enabled": "maybe"}, HTTP_HX_TARGET="rule-list", **HTMX)
    assert "Please correct the filters" in resp.content.decode()


def test_rules_list_query_count_is_pinned(operator_client, django_assert_num_queries):
    cam = factories.CameraFactory()
    zone = factories.CameraZoneFactory(camera=cam)
    for i in range(20):
        factories.AlertRuleFactory(zone_ids=[zone.pk] if i % 2 else None)
    operator_client.get(reverse("alerting:rules"))
    # session, user, groups (is_operator), rules, zone names
    with django_assert_num_queries(5):
        resp = operator_client.get(reverse("alerting:rules"))
    assert len(resp.context["rules"]) == 20
    assert zone.name in resp.content.decode()


def test_create_rule_with_schedule_zones_and_channels(operator_client):
    cam = factories.CameraFactory(id="porch")
    factories.CameraZoneFactory(id="steps", camera=cam)
    data = valid_data(
        camera_ids=["porch"],
        zone_ids=["steps"],
        schedule_enabled="on",
        schedule_days=["4", "5"],
        schedule_start="22:00",
        schedule_end="06:00",
        schedule_timezone="Europe/Berlin",
        email_to="ops@example.com, night@example.com",
        webhooks="https://hooks.example.com/a s3cret\nhttp://10.0.0.2:8080/b",
        dedup_key_template="{camera_id}:{zone_id}:{object_type}",
    )
    resp = operator_client.post(reverse("alerting:rule_create"), data)
    assert resp.status_code == 302
    rule = AlertRule.objects.get()
    assert resp["Location"] == reverse("alerting:rule_edit", args=[rule.pk])
    assert rule.schedule == {"days": [4, 5], "start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"}
    assert rule.camera_ids == ["porch"] and rule.zone_ids == ["steps"] and rule.object_types == ["person"]
    assert rule.channels == [
        {"type": "email", "to": ["ops@example.com", "night@example.com"]},
        {"type": "webhook", "url": "https://hooks.example.com/a", "secret": "s3cret"},
        {"type": "webhook", "url": "http://10.0.0.2:8080/b"},
    ]
    audit = AuditLog.objects.get(action="rule.create")
    assert audit.details["changes"]["name"] == [None, "Night person"]
    assert "s3cret" not in str(audit.details)


@pytest.mark.parametrize(
    "over, field, message",
    [
        ({"dedup_key_template": "{camera_id}:{cam}"}, "dedup_key_template", "Unknown placeholder(s): {cam}"),
        ({"risk_threshold": "101"}, "risk_threshold", "less than or equal to 100"),
        ({"min_confidence": "1.5"}, "min_confidence", "less than or equal to 1"),
        ({"cooldown_seconds": "-1"}, "cooldown_seconds", "greater than or equal to 0"),
        ({"name": "  "}, "name", ""),
        (
            {"schedule_enabled": "on", "schedule_days": ["1"], "schedule_start": "08:00", "schedule_end": "08:00"},
            "schedule_end",
            "Start and end are the same",
        ),
        (
            {
                "schedule_enabled": "on",
                "schedule_days": ["1"],
                "schedule_start": "08:00",
                "schedule_end": "09:00",
                "schedule_timezone": "Mars/Olympus",
            },
            "schedule_timezone",
            "Unknown timezone",
        ),  # fmt: skip
        (
            {"schedule_enabled": "on", "schedule_days": ["1"], "schedule_start": "8am", "schedule_end": "09:00"},
            "schedule_start",
            "HH:MM",
        ),
        (
            {"schedule_enabled": "on", "schedule_start": "08:00", "schedule_end": "09:00"},
            "schedule_days",
            "at least one day",
        ),
        (
            {"schedule_enabled": "on", "schedule_days": ["9"], "schedule_start": "08:00", "schedule_end": "09:00"},
            "schedule_days",
            "valid choice",
        ),
        ({"email_to": "ops@example.com, nope"}, "email_to", "'nope' is not a valid email address"),
        ({"webhooks": "ftp://example.com/x"}, "webhooks", "Line 1: Webhook URL"),
        ({"object_types": ["unicorn"]}, "object_types", "valid choice"),
    ],
)
def test_bad_input_gives_a_form_error_on_the_field_and_saves_nothing(operator_client, over, field, message):
    resp = operator_client.post(reverse("alerting:rule_create"), valid_data(**over))
    assert resp.status_code == 400
    errors = resp.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert AlertRule.objects.count() == 0
    assert f'id="err-{field}"' in resp.content.decode()


def test_zones_must_belong_to_the_chosen_cameras(operator_client):
    a, b = factories.CameraFactory(id="a"), factories.CameraFactory(id="b")
    factories.CameraZoneFactory(id="za", camera=a)
    factories.CameraZoneFactory(id="zb", camera=b)
    resp = operator_client.post(reverse("alerting:rule_create"), valid_data(camera_ids=["a"], zone_ids=["za", "zb"]))
    assert resp.status_code == 400
    assert "zb (b)" in resp.context["form"].errors["zone_ids"][0]
    assert not AlertRule.objects.exists()


def test_edit_rule_audits_changes_and_masks_secrets(operator_client):
    rule = factories.AlertRuleFactory(
        name="R", risk_threshold=50, channels=[{"type": "webhook", "url": "https://h.example/x", "secret": "OLDSECRET"}]
    )
    resp = operator_client.get(reverse("alerting:rule_edit", args=[rule.pk]))
    assert resp.status_code == 200 and "https://h.example/x OLDSECRET" in resp.content.decode()
    resp = operator_client.post(
        reverse("alerting:rule_edit", args=[rule.pk]),
        valid_data(name="R", risk_threshold="70", webhooks="https://h.example/x NEWSECRET"),
    )
    assert resp.status_code == 302
    rule.refresh_from_db()
    assert rule.risk_threshold == 70 and rule.channels[0]["secret"] == "NEWSECRET"
    changes = AuditLog.objects.get(action="rule.update").details["changes"]
    assert changes["risk_threshold"] == [50, 70]
    assert "OLDSECRET" not in str(changes) and "NEWSECRET" not in str(changes)
    old, new = changes["channels"]
    assert old[0]["secret"].startswith("sha256:") and old[0]["secret"] != new[0]["secret"]


def test_failed_edit_changes_nothing(operator_client):
    rule = factories.AlertRuleFactory(name="R", dedup_key_template="{camera_id}")
    resp = operator_client.post(
        reverse("alerting:rule_edit", args=[rule.pk]), valid_data(name="R2", dedup_key_template="{x}")
    )
    assert resp.status_code == 400
    rule.refresh_from_db()
    assert rule.name == "R" and rule.dedup_key_template == "{camera_id}"


def test_validate_as_you_type_reports_only_touched_fields(operator_client):
    data = valid_data(risk_threshold="500", dedup_key_template="{bad}", _touched="risk_threshold")
    resp = operator_client.post(reverse("alerting:rule_validate"), data, **HTMX)
    body = resp.content.decode()
    assert resp.status_code == 200
    assert 'id="err-risk_threshold" hx-swap-oob="true"><li>Ensure this value is less than or equal to 100.</li>' in body
    assert 'id="err-dedup_key_template" hx-swap-oob="true"></ul>' in body  # not touched yet
    assert not AlertRule.objects.exists()


def test_zone_options_follow_the_chosen_cameras(operator_client):
    a, b = factories.CameraFactory(id="a"), factories.CameraFactory(id="b")
    factories.CameraZoneFactory(id="za", camera=a, name="Zone A")
    factories.CameraZoneFactory(id="zb", camera=b, name="Zone B")
    body = operator_client.get(reverse("alerting:rule_zone_options"), {"camera_ids": "a"}).content.decode()
    assert "Zone A" in body and "Zone B" not in body
    body = operator_client.get(reverse("alerting:rule_zone_options")).content.decode()
    assert "Zone A" in body and "Zone B" in body


def test_toggle_duplicate_delete(operator_client):
    rule = factories.AlertRuleFactory(name="R", enabled=True)
    resp = operator_client.post(reverse("alerting:rule_toggle", args=[rule.pk]), **HTMX)
    assert resp.status_code == 200 and "Disabled" in resp.content.decode()
    rule.refresh_from_db()
    assert rule.enabled is False
    resp = operator_client.post(reverse("alerting:rule_duplicate", args=[rule.pk]))
    copy = AlertRule.objects.exclude(pk=rule.pk).get()
    assert (
        copy.name == "Copy of R"
        and copy.enabled is False
        and resp["Location"] == reverse("alerting:rule_edit", args=[copy.pk])
    )
    factories.AlertFactory(rule=rule)
    resp = operator_client.get(reverse("alerting:rule_delete", args=[rule.pk]))
    assert resp.status_code == 200 and "1 alert(s) stay" in resp.content.decode()
    resp = operator_client.post(reverse("alerting:rule_delete", args=[rule.pk]))
    assert resp.status_code == 302 and not AlertRule.objects.filter(pk=rule.pk).exists()
    assert {a.action for a in AuditLog.objects.filter(resource_type="alert_rule")} == {
        "rule.update",
        "rule.duplicate",
        "rule.delete",
    }


def test_viewer_gets_403_on_every_rule_post(viewer_client):
    rule = factories.AlertRuleFactory(enabled=True)
    for name, args in [
        ("rule_create", []),
        ("rule_edit", [rule.pk]),
        ("rule_toggle", [rule.pk]),
        ("rule_duplicate", [rule.pk]),
        ("rule_delete", [rule.pk]),
        ("rule_validate", []),
    ]:
        assert viewer_client.post(reverse(f"alerting:{name}", args=args), valid_data()).status_code == 403, name
    assert AlertRule.objects.count() == 1 and AlertRule.objects.get().enabled
    assert viewer_client.get(reverse("alerting:rule_edit", args=[rule.pk])).status_code == 200


def test_rule_test_page_shows_matches_and_reasons_without_alerts(viewer_client):
    from alerting.models import Alert
    from tests.alerting.helpers import make_event

    cam = factories.CameraFactory()
    hi, lo = make_event(cam, risk=90), make_event(cam, risk=10)
    rule = factories.AlertRuleFactory(risk_threshold=50, object_types=["person"], min_confidence=None)
    resp = viewer_client.get(reverse("alerting:rule_test", args=[rule.pk]), {"mode": "last", "last_n": "10"})
    assert resp.status_code == 200
    results = {ev.id: m.matched for ev, m in resp.context["results"]}
    assert results == {hi.pk: True, lo.pk: False}
    body = resp.content.decode()
    assert "risk 10 &lt; 50" in body and "1</strong> of 2" in body
    assert Alert.objects.count() == 0


def test_rule_test_date_range_and_bad_input(viewer_client):
    rule = factories.AlertRuleFactory()
    url = reverse("alerting:rule_test", args=[rule.pk])
    resp = viewer_client.get(url, {"mode": "range", "start": "2026-01-02T00:00", "end": "2026-01-01T00:00"})
    assert resp.status_code == 400 and "The end must be after the start." in resp.content.decode()
    resp = viewer_client.get(url, {"mode": "last", "last_n": "5000"})
    assert resp.status_code == 400
    resp = viewer_client.get(url, {"mode": "range", "start": "2020-01-01T00:00", "end": "2020-01-02T00:00"})
    assert resp.status_code == 200 and resp.context["results"] == []


def test_viewers_do_not_see_webhook_secrets(viewer_client):
    rule = factories.AlertRuleFactory(
        channels=[{"type": "webhook", "url": "https://h.example/x", "secret": "TOPSECRET"}]
    )
    body = viewer_client.get(reverse("alerting:rule_edit", args=[rule.pk])).content.decode()
    assert "https://h.example/x (secret hidden)" in body and "TOPSECRET" not in body
