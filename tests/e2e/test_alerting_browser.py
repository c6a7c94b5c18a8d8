"""Browser checks of the alerting pages (Playwright + Chromium, like tests/e2e): the zone
editor's drawing, live rule validation, and the inbox's conflict message."""

import json

import pytest
from playwright.sync_api import expect

from alerting.models import Alert, CameraZone
from tests import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
]  # the e2e conftest marks these e2e and skips them, with the reason, without Chromium


def _svg_click(pg, x, y):
    """Click at normalised (x, y) of the zone canvas."""
    box = pg.locator("#zone-canvas").bounding_box()
    pg.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def test_draw_a_polygon_and_save_it(page, login, operator):
    factories.CameraFactory(id="porch", name="Porch")
    login(operator)
    page.goto("/zones/porch/")
    page.click("button[data-zone-mode=polygon]")
    for x, y in [(0.1, 0.1), (0.5, 0.1), (0.3, 0.6)]:
        _svg_click(page, x, y)
    points = json.loads(page.locator("textarea[name=coordinates]").input_value())
    assert len(points) == 3
    assert points[0] == pytest.approx([0.1, 0.1], abs=0.01)
    expect(page.locator("#zone-edit-layer circle")).to_have_count(3)
    # Drag the first vertex to (0.2, 0.3).
    box = page.locator("#zone-canvas").bounding_box()
    page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.1 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.3 * box["height"], steps=4)
    page.mouse.up()
    points = json.loads(page.locator("textarea[name=coordinates]").input_value())
    assert len(points) == 3 and points[0] == pytest.approx([0.2, 0.3], abs=0.01)
    page.fill("input[name=id]", "steps")
    page.fill("input[name=name]", "Steps")
    page.click("#zone-form button[type=submit]")
    page.wait_for_url("**/zones/porch/?zone=steps")
    zone = CameraZone.objects.get(pk="steps")
    assert zone.shape == "polygon" and len(zone.coordinates) == 3


def test_drag_a_rectangle_and_see_inline_errors(page, login, operator):
    factories.CameraFactory(id="porch", name="Porch")
    login(operator)
    page.goto("/zones/porch/")
    page.click("button[data-zone-mode=rectangle]")
    assert page.locator("select[name=shape]").input_value() == "rectangle"
    box = page.locator("#zone-canvas").bounding_box()
    page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    points = json.loads(page.locator("textarea[name=coordinates]").input_value())
    assert len(points) == 4 and points[0][1] == points[1][1] and points[1][0] == points[2][0]
    # Typing a crossing polygon redraws it; the server refuses it with an inline error.
    page.select_option("select[name=shape]", "polygon")
    page.fill("textarea[name=coordinates]", "[[0,0],[1,1],[1,0],[0,1]]")
    expect(page.locator("#zone-edit-layer circle")).to_have_count(4)
    page.fill("input[name=id]", "bow")
    page.fill("input[name=name]", "Bow tie")
    page.click("#zone-form button[type=submit]")
    page.wait_for_selector("#err-coordinates li")
    assert "cross each other" in page.locator("#err-coordinates").inner_text()
    assert not CameraZone.objects.exists()
    # The swapped-in editor is live again: the kept points are drawn and a click adds one.
    # expect() waits: the editor's script redraws the points just after the swap settles.
    expect(page.locator("#zone-edit-layer circle")).to_have_count(4)
    _svg_click(page, 0.9, 0.5)
    assert len(json.loads(page.locator("textarea[name=coordinates]").input_value())) == 5


def test_rule_form_validates_as_you_type(page, login, operator):
    login(operator)
    page.goto("/rules/new/")
    page.fill("input[name=risk_threshold]", "150")
    page.wait_for_selector("#err-risk_threshold li")
    assert "less than or equal to 100" in page.locator("#err-risk_threshold").inner_text()
    assert page.locator("#err-name li").count() == 0  # untouched fields stay quiet
    page.fill("input[name=risk_threshold]", "50")
    page.wait_for_selector("#err-risk_threshold li", state="detached")


def test_inbox_shows_the_conflict_message(page, login, operator, browser_problems):
    browser_problems.allow(r"Response Status Error Code 409")  # htmx logs the expected conflict
    alert = factories.AlertFactory(status="pending")
    login(operator)
    page.goto("/alerts/")
    Alert.objects.filter(pk=alert.pk).update(version_id=2)  # someone else changed it meanwhile
    page.click(f"#alert-{alert.pk} button:has-text('Acknowledge')")
    page.wait_for_selector("#alerting-error:not([hidden])")
    assert "changed by someone else" in page.locator("#alerting-error").inner_text()
    assert Alert.objects.get(pk=alert.pk).status == "pending"
