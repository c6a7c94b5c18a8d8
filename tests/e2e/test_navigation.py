"""Every area of the console, reached through the main navigation with some data in it,
renders without a JavaScript error, a CSP violation, a 5xx or a missing asset (the `page`
fixture fails the test on any of those), and its lazy widgets load."""

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

AREAS = [
    ("Overview", "Overview"),
    ("GPU", "GPU"),
    ("Logs", "Logs"),
    ("Audit", "Audit trail"),
    ("Alerts", "Alerts"),
    ("Rules", "Alert rules"),
    ("Zones", "Camera zones"),
    ("Baselines", "Baselines"),
    ("Events", "Events"),
    ("Jobs", "Jobs"),
    ("Exports", "Exports"),
    ("Backups", "Backups"),
]


def test_every_area_renders_cleanly(page, login, operator):
    camera = factories.CameraFactory(id="porch", name="Porch")
    event = factories.EventFactory(camera=camera, risk_score=72, summary="Courier at the porch")
    factories.EventDetectionFactory(event=event)
    factories.AlertFactory(event=event)
    factories.CameraZoneFactory(camera=camera)
    factories.LogFactory(message="Detector started")
    factories.GpuStatFactory()
    factories.AuditLogFactory()
    factories.JobFactory(status="completed")
    factories.ActivityBaselineFactory(camera=camera)
    login(operator)

    nav = page.get_by_role("navigation", name="Main")
    for label, heading in AREAS:
        nav.get_by_role("link", name=label, exact=True).click()
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        if label == "Overview":
            # Each widget loads itself with HTMX right after the page.
            expect(page.locator(".overview-widget")).not_to_have_count(0)
            expect(page.locator(".overview-widget", has_text="Loading…")).to_have_count(0)
        page.wait_for_load_state("load")

    # A few detail pages behind the lists.
    nav.get_by_role("link", name="Events", exact=True).click()
    page.get_by_role("link", name="Courier at the porch").first.click()
    expect(page.locator("main")).to_contain_text("Courier at the porch")
    nav.get_by_role("link", name="Alerts", exact=True).click()
    page.locator("tr.alerting-row a").first.click()
    expect(page.locator("main")).to_contain_text("Courier at the porch")
    nav.get_by_role("link", name="Baselines", exact=True).click()
    page.get_by_role("link", name="Porch").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Porch")
