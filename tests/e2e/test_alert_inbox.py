"""Scenario 4: an event that matches a rule raises an alert that appears in the open inbox
(its live counts poll the server); the operator acknowledges it there."""

import pytest
from django.db import transaction
from playwright.sync_api import expect

from alerting.models import Alert
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_alert_from_a_new_event_appears_in_the_inbox_and_is_acknowledged(page, login, operator):
    camera = factories.CameraFactory(id="front_door", name="Front door")
    rule = factories.AlertRuleFactory(
        name="Person at the door", risk_threshold=50, object_types=["person"], min_confidence=0.5, cooldown_seconds=0
    )
    login(operator)
    page.goto("/alerts/")
    pending = page.locator("#alert-counts [data-status=pending]")
    expect(pending).to_have_text("0")
    expect(page.get_by_text("No alerts match these filters.")).to_be_visible()

    # The detector pipeline writes an event and its detections in one transaction; the
    # rule engine runs after the commit (django-q2 runs the task inline under pytest).
    with transaction.atomic():
        event = factories.EventFactory(camera=camera, risk_score=85, summary="Person lingering at the front door")
        factories.EventDetectionFactory(event=event, detection__object_type="person", detection__confidence=0.92)
    alert = Alert.objects.get(event=event)
    assert alert.rule_id == rule.pk and alert.status == "pending"

    # The counts poll every 5 s: the new alert shows up without a reload.
    expect(pending).to_have_text("1", timeout=12_000)
    page.locator("#alert-counts a.alerting-status-pending").click()
    page.wait_for_url("**/alerts/?status=pending")
    row = page.locator(f"#alert-{alert.pk}")
    expect(row).to_contain_text("Person at the door")
    expect(row).to_contain_text("front_door")
    expect(row).to_contain_text("Person lingering at the front door")
    expect(row.locator(".badge.alerting-status-pending")).to_have_text("Pending")

    row.get_by_role("button", name="Acknowledge").click()
    # The row is swapped in place by HTMX.
    expect(row.locator(".badge.alerting-status-acknowledged")).to_have_text("Acknowledged")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(row.get_by_role("button", name="Dismiss")).to_be_visible()

    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert alert.version_id == 2
    # And the live counts follow.
    expect(page.locator("#alert-counts [data-status=acknowledged]")).to_have_text("1", timeout=12_000)
    expect(pending).to_have_text("0")
