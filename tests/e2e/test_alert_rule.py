"""Scenario 2: an operator creates an alert rule with a schedule through the rules form."""

import pytest
from playwright.sync_api import expect

from alerting.models import AlertRule
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_creates_a_scheduled_rule_and_sees_it_listed(page, login, operator):
    factories.CameraFactory(id="driveway", name="Driveway")
    factories.CameraFactory(id="backyard", name="Backyard")
    login(operator)

    page.goto("/rules/")
    expect(page.get_by_text("No rules match.")).to_be_visible()
    page.get_by_role("link", name="New rule").click()
    expect(page.get_by_role("heading", name="New alert rule")).to_be_visible()

    page.fill("#id_name", "Night prowler")
    page.fill("#id_description", "Person on the driveway at night")
    page.select_option("#id_severity", "critical")
    page.fill("#id_risk_threshold", "60")
    page.fill("#id_min_confidence", "0.7")
    page.locator("#field-object_types").get_by_label("person", exact=True).check()
    page.locator("#field-camera_ids").get_by_label("Driveway", exact=True).check()
    # Schedule: weekdays only, 22:00 to 06:00 (overnight) in Paris time.
    page.locator("#field-schedule_enabled").get_by_label("Only at certain times").check()
    days = page.locator("#field-schedule_days")
    days.get_by_label("Sat", exact=True).uncheck()
    days.get_by_label("Sun", exact=True).uncheck()
    page.fill("#id_schedule_start", "22:00")
    page.fill("#id_schedule_end", "06:00")
    page.fill("#id_schedule_timezone", "Europe/Paris")
    page.fill("#id_cooldown_seconds", "600")
    page.get_by_role("button", name="Save rule").click()

    expect(page.locator(".messages")).to_contain_text("Rule “Night prowler” created.")
    expect(page.get_by_role("heading", name="Edit rule Night prowler")).to_be_visible()
    rule = AlertRule.objects.get(name="Night prowler")
    assert page.url.endswith(f"/rules/{rule.pk}/")

    page.get_by_role("link", name="← Rules").click()
    row = page.locator(f"#rule-{rule.pk}")
    expect(row.get_by_role("link", name="Night prowler")).to_be_visible()
    expect(row).to_contain_text("22:00–06:00 Europe/Paris")
    expect(row).to_contain_text("risk ≥ 60")
    expect(row).to_contain_text("cameras: driveway")
    expect(row.get_by_role("button", name="Enabled")).to_be_visible()

    rule.refresh_from_db()
    assert rule.schedule == {"days": [0, 1, 2, 3, 4], "start": "22:00", "end": "06:00", "timezone": "Europe/Paris"}
    assert rule.severity == "critical"
    assert rule.risk_threshold == 60
    assert rule.min_confidence == pytest.approx(0.7)
    assert rule.object_types == ["person"]
    assert rule.camera_ids == ["driveway"]
    assert rule.cooldown_seconds == 600
    assert rule.enabled is True
