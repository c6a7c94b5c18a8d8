"""Scenario 3: an operator draws a zone by clicking four points on the camera frame."""

import json

import pytest
from playwright.sync_api import expect

from alerting.models import CameraZone
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

# Where to click, as fractions of the frame: a quadrilateral over the driveway.
CLICKS = [(0.2, 0.3), (0.7, 0.25), (0.8, 0.85), (0.15, 0.8)]


def click_on_frame(page, x, y):
    box = page.locator("#zone-canvas").bounding_box()
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def test_operator_draws_a_zone_on_the_frame_and_saves_it(page, login, operator):
    factories.CameraFactory(id="driveway", name="Driveway")
    login(operator)

    page.goto("/zones/")
    page.get_by_role("link", name="Edit zones").click()
    expect(page.get_by_role("heading", name="Zones of Driveway")).to_be_visible()
    expect(page.get_by_text("No zones yet: draw one above.")).to_be_visible()
    # The frame (the placeholder, since this camera has no snapshot) is drawn under the overlay.
    expect(page.locator("#zone-canvas image")).to_have_attribute("href", "/zones/driveway/_frame/")
    expect(page.locator("#zone-canvas")).to_have_attribute("data-zone-editor", "on")  # zone-editor.js is ready

    # A new zone starts in rectangle mode (drag); clicking points needs polygon mode.
    polygon = page.get_by_role("button", name="Polygon (click to add points)")
    polygon.click()
    expect(polygon).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#id_shape")).to_have_value("polygon")

    for n, (x, y) in enumerate(CLICKS, start=1):
        click_on_frame(page, x, y)
        expect(page.locator("#zone-edit-layer circle.zone-vertex")).to_have_count(n)
    expect(page.locator("#zone-edit-layer polygon.zone-current")).to_have_count(1)
    drawn = json.loads(page.locator("#id_coordinates").input_value())
    assert drawn == [pytest.approx([x, y], abs=0.01) for x, y in CLICKS]

    page.fill("#id_id", "drive")
    page.fill("#id_name", "Driveway apron")
    page.select_option("#id_zone_type", "driveway")
    page.get_by_role("button", name="Create zone").click()

    page.wait_for_url("**/zones/driveway/?zone=drive")
    expect(page.locator(".messages")).to_contain_text("Zone “Driveway apron” created.")
    listed = page.locator("table.alerting-table tbody tr", has_text="Driveway apron")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("(drive)")
    expect(listed).to_contain_text("Driveway")
    # Reopened for editing: the saved points are drawn again from the stored coordinates.
    expect(page.locator("#zone-edit-layer circle.zone-vertex")).to_have_count(4)

    zone = CameraZone.objects.get(pk="drive")
    assert zone.camera_id == "driveway"
    assert zone.shape == "polygon"
    assert zone.zone_type == "driveway"
    assert len(zone.coordinates) == 4
    for x, y in zone.coordinates:
        assert 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0
    assert zone.coordinates == [pytest.approx([x, y], abs=0.01) for x, y in CLICKS]
