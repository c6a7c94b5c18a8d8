import pytest
from django.urls import reverse

from alerting.models import CameraZone
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def zone_data(**over):
    data = {
        "id": "porch_steps",
        "name": "Porch steps",
        "zone_type": "entry_point",
        "shape": "polygon",
        "coordinates": "[[0.1, 0.2], [0.4, 0.2], [0.3, 0.6]]",
        "color": "#ff0000",
        "priority": "2",
        "enabled": "on",
    }
    data.update(over)
    return data


def test_zone_list_and_editor_pages(viewer_client):
    cam = factories.CameraFactory(id="porch", name="Porch")
    zone = factories.CameraZoneFactory(id="steps", camera=cam, name="Steps")
    rule = factories.AlertRuleFactory(name="Steps at night", zone_ids=["steps"])
    assert "Porch" in viewer_client.get(reverse("alerting:zones")).content.decode()
    resp = viewer_client.get(reverse("alerting:camera_zones", args=["porch"]))
    body = resp.content.decode()
    assert resp.status_code == 200
    assert 'id="zone-canvas"' in body and "js/zone-editor.js" in body
    assert rule.name in body and zone.name in body
    assert 'viewBox="0 0 1600 900"' in body  # neutral 16:9 placeholder without a frame
    resp = viewer_client.get(reverse("alerting:camera_zones", args=["porch"]), {"zone": "steps"})
    assert resp.context["editing"] == zone


def test_create_zone(operator_client):
    factories.CameraFactory(id="porch")
    resp = operator_client.post(reverse("alerting:zone_create", args=["porch"]), zone_data(), **HTMX)
    assert resp.status_code == 204 and resp["HX-Redirect"].endswith("?zone=porch_steps")
    zone = CameraZone.objects.get()
    assert zone.camera_id == "porch" and zone.coordinates == [[0.1, 0.2], [0.4, 0.2], [0.3, 0.6]]
    assert zone.color == "#FF0000" and zone.priority == 2
    assert AuditLog.objects.get(action="zone.create").resource_id == "porch_steps"


@pytest.mark.parametrize(
    "over, field, message",
    [
        ({"coordinates": "[[0, 0], [1, 1], [1, 0], [0, 1]]"}, "coordinates", "cross each other"),
        ({"coordinates": "[[0, 0], [1.5, 0], [1, 1]]"}, "coordinates", "outside the frame"),
        ({"coordinates": "[[0, 0], [1, 0]]"}, "coordinates", "at least 3 points"),
        (
            {"coordinates": "[[0,0],[0.5,0],[0.6,0.5],[0,0.5]]", "shape": "rectangle"},
            "coordinates",
            "horizontal or vertical",
        ),
        ({"coordinates": "not json"}, "coordinates", "valid JSON"),
        ({"color": "red"}, "color", "#RRGGBB"),
        ({"priority": "-1"}, "priority", "greater than or equal to 0"),
        ({"id": "Bad Id!"}, "id", "lower-case"),
        ({"zone_type": "moat"}, "zone_type", "valid choice"),
    ],
)
def test_bad_zone_gives_inline_errors_and_saves_nothing(operator_client, over, field, message):
    factories.CameraFactory(id="porch")
    resp = operator_client.post(reverse("alerting:zone_create", args=["porch"]), zone_data(**over), **HTMX)
    assert resp.status_code == 400
    errors = resp.context["form"].errors
    assert message in " ".join(errors[field]), errors
    body = resp.content.decode()
    assert body.startswith('\n<div id="zone-editor-region">') or '<div id="zone-editor-region">' in body[:200]
    assert f'id="err-{field}"' in body
    assert not CameraZone.objects.exists()


def test_zone_id_must_be_unique(operator_client):
    cam = factories.CameraFactory(id="porch")
    factories.CameraZoneFactory(id="porch_steps", camera=cam)
    resp = operator_client.post(reverse("alerting:zone_create", args=["porch"]), zone_data())
    assert resp.status_code == 400 and "already exists" in str(resp.context["form"].errors["id"])


def test_update_zone_keeps_its_id_and_audits(operator_client):
    cam = factories.CameraFactory(id="porch")
    factories.CameraZoneFactory(id="steps", camera=cam, name="Steps", shape="rectangle")
    resp = operator_client.post(
        reverse("alerting:zone_update", args=["porch", "steps"]),
        zone_data(id="renamed", name="Front steps", shape="rectangle", coordinates="[[0,0],[0.5,0],[0.5,0.5],[0,0.5]]"),
    )
    assert resp.status_code == 302
    zone = CameraZone.objects.get()
    assert zone.pk == "steps" and zone.name == "Front steps" and zone.coordinates[1] == [0.5, 0]
    changes = AuditLog.objects.get(action="zone.update").details["changes"]
    assert changes["name"] == ["Steps", "Front steps"]


def test_invalid_update_changes_nothing(operator_client):
    cam = factories.CameraFactory(id="porch")
    original = factories.CameraZoneFactory(id="steps", camera=cam).coordinates
    resp = operator_client.post(
        reverse("alerting:zone_update", args=["porch", "steps"]), zone_data(coordinates="[[0,0],[1,1],[1,0],[0,1]]")
    )
    assert resp.status_code == 400
    assert CameraZone.objects.get().coordinates == original


def test_zone_of_another_camera_is_404(operator_client):
    factories.CameraFactory(id="porch")
    factories.CameraZoneFactory(id="steps", camera=factories.CameraFactory(id="garage"))
    assert (
        operator_client.post(reverse("alerting:zone_update", args=["porch", "steps"]), zone_data()).status_code == 404
    )


def test_delete_zone_refused_while_rules_use_it(operator_client):
    cam = factories.CameraFactory(id="porch")
    factories.CameraZoneFactory(id="steps", camera=cam)
    rule = factories.AlertRuleFactory(name="Uses steps", zone_ids=["steps"])
    resp = operator_client.post(reverse("alerting:zone_delete", args=["porch", "steps"]), **HTMX)
    assert resp.status_code == 409 and "Uses steps" in resp.content.decode()
    assert CameraZone.objects.exists()
    rule.zone_ids = None
    rule.save()
    resp = operator_client.post(reverse("alerting:zone_delete", args=["porch", "steps"]), **HTMX)
    assert resp.status_code == 204 and not CameraZone.objects.exists()
    assert AuditLog.objects.filter(action="zone.delete", status="success").count() == 1


def test_viewer_cannot_change_zones(viewer_client):
    cam = factories.CameraFactory(id="porch")
    factories.CameraZoneFactory(id="steps", camera=cam)
    assert viewer_client.post(reverse("alerting:zone_create", args=["porch"]), zone_data()).status_code == 403
    assert viewer_client.post(reverse("alerting:zone_update", args=["porch", "steps"]), zone_data()).status_code == 403
    assert viewer_client.post(reverse("alerting:zone_delete", args=["porch", "steps"])).status_code == 403
    assert CameraZone.objects.count() == 1


def test_frame_is_served_from_media_root_only(viewer_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "porch.jpg").write_bytes(b"\xff\xd8\xff fake jpeg")
    (tmp_path.parent / "secret.txt").write_text("nope")
    cam = factories.CameraFactory(id="porch", frame_path="frames/porch.jpg", frame_width=1280, frame_height=720)
    resp = viewer_client.get(reverse("alerting:camera_frame", args=["porch"]))
    assert resp.status_code == 200 and b"".join(resp.streaming_content) == b"\xff\xd8\xff fake jpeg"
    page = viewer_client.get(reverse("alerting:camera_zones", args=["porch"])).content.decode()
    assert 'viewBox="0 0 1280 720"' in page
    cam.frame_path = "../secret.txt"
    cam.save()
    resp = viewer_client.get(reverse("alerting:camera_frame", args=["porch"]))
    assert resp["Content-Type"] == "image/svg+xml" and b"No frame" in resp.content
