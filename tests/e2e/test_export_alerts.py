"""Scenario 5: export the inbox's filtered alerts as CSV, watch the export finish,
acknowledge the data's sensitivity and download the file."""

import csv
import io

import pytest
from playwright.sync_api import expect

from jobs.models import ExportJob
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_exports_filtered_alerts_as_csv_and_downloads_it(page, login, operator, file_dirs):
    rule = factories.AlertRuleFactory(name="Person at night")
    camera = factories.CameraFactory(id="garage", name="Garage")
    high = [
        factories.AlertFactory(rule=rule, event__camera=camera, severity="high", dedup_key=f"garage:{n}")
        for n in range(3)
    ]
    # A dedup key that a spreadsheet would run as a formula: the export must neutralise it.
    high.append(factories.AlertFactory(rule=rule, event__camera=camera, severity="high", dedup_key="=HYPERLINK(1)"))
    factories.AlertFactory(rule=rule, event__camera=camera, severity="low", dedup_key="garage:low")
    login(operator)

    page.goto("/alerts/")
    expect(page.locator("#alert-list tbody tr.alerting-row")).to_have_count(5)
    page.locator(".alerting-filter-severity").get_by_label("High", exact=True).check()
    expect(page.locator("#alert-list tbody tr.alerting-row")).to_have_count(4)
    page.get_by_role("link", name="Export these results").click()

    expect(page.get_by_role("heading", name="Export alerts")).to_be_visible()
    expect(page.locator(".jobs-facts")).to_contain_text("Severityhigh")
    page.get_by_label("Format").select_option("csv")
    page.get_by_role("button", name="Start export").click()

    page.wait_for_url("**/exports/*/")
    export = ExportJob.objects.get()
    live = page.locator("#export-live")
    expect(live.locator(".badge.completed")).to_have_text("Completed")
    expect(live.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(live).to_contain_text("4 of 4")

    page.get_by_role("link", name="Download…").click()
    expect(page.get_by_role("heading", name="Download export")).to_be_visible()
    acknowledge = page.get_by_label("I understand this file contains sensitive surveillance data")
    # Without the acknowledgement the browser does not even send the form (the box is required).
    page.get_by_role("button", name="Download").click()
    assert acknowledge.evaluate("box => box.validity.valueMissing")
    expect(page.get_by_role("heading", name="Download export")).to_be_visible()
    acknowledge.check()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename.startswith("watchpost-alerts-")
    assert download.suggested_filename.endswith(".csv")
    path = file_dirs / "downloaded.csv"
    download.save_as(path)

    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header = rows[0]
    assert header[:6] == ["id", "created_at", "updated_at", "delivered_at", "severity", "status"]
    assert {"rule_name", "camera_id", "dedup_key"} <= set(header)
    records = [dict(zip(header, r, strict=True)) for r in rows[1:]]
    assert sorted(r["id"] for r in records) == sorted(str(a.pk) for a in high)
    assert {r["severity"] for r in records} == {"high"}
    assert {r["rule_name"] for r in records} == {"Person at night"}
    assert {r["camera_id"] for r in records} == {"garage"}
    assert "'=HYPERLINK(1)" in {r["dedup_key"] for r in records}

    export.refresh_from_db()
    assert export.status == "completed"
    assert export.export_type == "alerts" and export.export_format == "csv"
    assert export.processed_items == 4
    assert export.download_count == 1
    assert export.sensitivity_acknowledged is True
