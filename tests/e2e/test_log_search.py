"""Scenario 7: full-text search in the log explorer highlights the matching words."""

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_search_finds_and_highlights_matches(page, login, operator):
    factories.LogFactory(level="ERROR", component="recorder", message="Disk quota exceeded on the recorder volume")
    # Markup in a message is shown as text: only the highlight becomes an element.
    factories.LogFactory(level="WARNING", component="frontend", message="Upload <b>quota</b> nearly reached")
    factories.LogFactory(level="INFO", component="detector", message="Model loaded in 2.3 s")
    factories.LogFactory(level="INFO", component="detector", message="Camera porch reconnected")
    login(operator)

    page.goto("/logs/")
    rows = page.locator("#log-rows tr.log-row")
    expect(rows).to_have_count(4)
    page.get_by_label("Search").fill("quota")
    page.get_by_role("button", name="Filter").click()

    expect(rows).to_have_count(2)
    page.wait_for_url("**/logs/?q=quota*")  # the filtered view is a link that can be shared
    marks = page.locator("#log-results td.log-message mark")
    expect(marks).to_have_count(2)
    expect(marks.first).to_have_text("quota")
    expect(marks.nth(1)).to_have_text("quota")
    recorder = rows.filter(has_text="recorder")
    expect(recorder.locator("td.log-message")).to_have_text("Disk quota exceeded on the recorder volume")
    expect(recorder.locator(".badge")).to_have_text("ERROR")
    upload = rows.filter(has_text="Upload")
    expect(upload.locator("td.log-message")).to_have_text("Upload <b>quota</b> nearly reached")
    expect(upload.locator("td.log-message b")).to_have_count(0)

    # A search with no match says so instead of showing an empty table.
    page.get_by_label("Search").fill("nonexistentword")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No log records match these filters.")).to_be_visible()
    expect(rows).to_have_count(0)
