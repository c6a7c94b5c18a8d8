"""Every alerting page renders for a viewer, and the forms a viewer sees cannot be posted."""

import pytest
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db


def test_every_page_renders(viewer_client):
    cam = factories.CameraFactory(id="porch")
    zone = factories.CameraZoneFactory(id="steps", camera=cam)
    rule = factories.AlertRuleFactory(
        zone_ids=["steps", "gone"],
        schedule={"days": [0, 6], "start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"},
        channels=[{"type": "email", "to": ["a@example.com"]}],
    )
    orphan = factories.AlertFactory(rule=None, metadata={"rule_name": "Old rule", "matched_conditions": []})
    factories.ClassBaselineFactory(camera=cam, detection_class="fox")
    pages = [
        reverse("alerting:alerts"),
        reverse("alerting:alert_detail", args=[orphan.pk]),
        reverse("alerting:rules"),
        reverse("alerting:rule_create"),
        reverse("alerting:rule_edit", args=[rule.pk]),
        reverse("alerting:rule_test", args=[rule.pk]),
        reverse("alerting:rule_delete", args=[rule.pk]),
        reverse("alerting:zones"),
        reverse("alerting:camera_zones", args=["porch"]) + f"?zone={zone.pk}",
        reverse("alerting:camera_frame", args=["porch"]),
        reverse("alerting:baselines"),
        reverse("alerting:camera_baselines", args=["porch"]),
    ]
    for url in pages:
        resp = viewer_client.get(url)
        # rule_create is operator-only, even to look at.
        assert resp.status_code == (403 if url == reverse("alerting:rule_create") else 200), url
    body = viewer_client.get(reverse("alerting:rule_edit", args=[rule.pk])).content.decode()
    assert 'value="gone" checked' in body and 'value="fox"' in body
    assert "Old rule" in viewer_client.get(reverse("alerting:alert_detail", args=[orphan.pk])).content.decode()


def test_unknown_things_are_404(viewer_client):
    assert viewer_client.get("/alerts/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert viewer_client.get("/zones/nope/").status_code == 404
    assert viewer_client.get("/baselines/nope/").status_code == 404
    assert viewer_client.get("/rules/00000000-0000-0000-0000-000000000000/test/").status_code == 404
