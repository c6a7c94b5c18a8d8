"""Scenario 6: create a backup on the Backups page, download it, lose some data, upload the
archive again and see the restore bring every row back."""

import zipfile

import pytest
from playwright.sync_api import expect

from alerting.models import Alert, AlertRule
from dashboard.models import Camera, Event
from jobs.models import BackupJob, RestoreJob
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_backs_up_then_restores_the_data(page, login, operator, file_dirs):
    camera = factories.CameraFactory(id="porch", name="Porch")
    rule = factories.AlertRuleFactory(name="Porch watcher")
    events = [factories.EventFactory(camera=camera, risk_score=70, summary=f"Visitor {n}") for n in range(3)]
    alert = factories.AlertFactory(rule=rule, event=events[0])
    zone = factories.CameraZoneFactory(id="steps", camera=camera, name="Steps")
    login(operator)

    page.goto("/backups/")
    expect(page.get_by_text("No backups yet.")).to_be_visible()
    page.get_by_role("button", name="Create backup").click()
    page.wait_for_url("**/backups/*/")
    backup = BackupJob.objects.get()
    live = page.locator("#backup-live")
    expect(live.locator(".badge.completed")).to_have_text("Completed")
    expect(live.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    manifest = page.locator("table", has_text="SHA-256")
    expect(manifest.locator("tr", has_text="events")).to_contain_text("3")
    with page.expect_download() as info:
        live.get_by_role("link", name="Download").click()
    archive = file_dirs / "backup.zip"
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        assert "manifest.json" in zf.namelist()

    # Something goes wrong: rows are lost and others changed after the backup.
    Alert.objects.all().delete()
    Event.objects.filter(pk__in=[e.pk for e in events[1:]]).delete()
    Camera.objects.filter(pk="porch").update(name="Renamed porch")
    factories.EventFactory(camera=camera, summary="Written after the backup")

    page.get_by_role("link", name="← Backups").click()
    page.get_by_label("Backup archive (.zip)").set_input_files(archive)
    page.get_by_label("I understand that restoring replaces every backed-up table").check()
    page.get_by_role("button", name="Upload and restore").click()

    page.wait_for_url("**/backups/restores/*/")
    restore = RestoreJob.objects.get()
    live = page.locator("#restore-live")
    expect(live.locator(".badge.completed")).to_have_text("Completed")
    expect(live.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_role("heading", name="Rows restored")).to_be_visible()
    expect(page.locator("tr", has=page.get_by_role("cell", name="events", exact=True))).to_contain_text("3")
    expect(page.locator("tr", has=page.get_by_role("cell", name="alerts", exact=True))).to_contain_text("1")

    # The data is exactly what the backup held.
    assert Camera.objects.get(pk="porch").name == "Porch"
    assert sorted(Event.objects.values_list("summary", flat=True)) == ["Visitor 0", "Visitor 1", "Visitor 2"]
    assert list(Alert.objects.values_list("pk", "event_id")) == [(alert.pk, events[0].pk)]
    assert AlertRule.objects.get().name == "Porch watcher"
    assert list(Camera.objects.get(pk="porch").zones.values_list("pk", flat=True)) == [zone.pk]
    restore.refresh_from_db()
    assert restore.status == "completed"
    backup.refresh_from_db()
    assert backup.status == "completed"

    # The Backups page lists both, finished.
    page.get_by_role("link", name="← Backups").click()
    expect(page.locator("#backup-results .badge.completed")).to_have_count(2)
