import json

import pytest
from django.test import Client
from django.urls import reverse

from monitoring.models import Log

pytestmark = pytest.mark.django_db

URL = reverse("monitoring:ingest")


def post(client, payload, **extra):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return client.post(URL, data=body, content_type="application/json", HTTP_USER_AGENT="Firefox/140", **extra)


def test_single_entry_is_stored_as_frontend(viewer_client):
    response = post(
        viewer_client,
        {"level": "error", "message": "TypeError: x is undefined", "url": "http://h/gpu/", "line": 12, "column": 4},
    )
    assert response.status_code == 201 and response.json() == {"accepted": 1}
    row = Log.objects.get()
    assert (row.level, row.source, row.component) == ("ERROR", "frontend", "frontend")
    assert row.message == "TypeError: x is undefined"
    assert row.user_agent == "Firefox/140"
    assert row.extra == {"url": "http://h/gpu/", "line": 12, "column": 4}


def test_batch_is_stored_whole(operator_client):
    entries = [
        {"level": "WARN", "message": "slow render", "component": "gpu-page", "duration_ms": 850},
        {"level": "INFO", "message": "tail started", "camera_id": "front_door", "extra": {"rows": 50}},
        {"message": "no level means error", "stack": "at f (app.js:1:2)\nat g (app.js:3:4)"},
    ]
    response = post(operator_client, entries)
    assert response.status_code == 201 and response.json() == {"accepted": 3}
    rows = {r.message: r for r in Log.objects.all()}
    assert rows["slow render"].level == "WARNING" and rows["slow render"].component == "gpu-page"
    assert rows["slow render"].duration_ms == 850
    assert rows["tail started"].camera_id == "front_door" and rows["tail started"].extra == {"rows": 50}
    assert rows["no level means error"].level == "ERROR"
    assert rows["no level means error"].extra == {"stack": "at f (app.js:1:2)\nat g (app.js:3:4)"}
    assert {r.source for r in rows.values()} == {"frontend"}


def test_more_than_100_entries_are_refused(viewer_client):
    response = post(viewer_client, [{"message": f"m{i}"} for i in range(101)])
    assert response.status_code == 400
    assert "at most 100 entries" in response.json()["error"]
    assert Log.objects.count() == 0


def test_exactly_100_entries_are_accepted(viewer_client):
    assert post(viewer_client, [{"message": f"m{i}"} for i in range(100)]).status_code == 201
    assert Log.objects.count() == 100


def test_body_over_64_kib_is_refused(viewer_client):
    response = post(viewer_client, {"message": "x" * (64 * 1024)})
    assert response.status_code == 413
    assert "64 KiB" in response.json()["error"]
    assert Log.objects.count() == 0


@pytest.mark.parametrize(
    "entry, field, message",
    [
        ({"level": 5, "message": "m"}, "level", "must be a string"),
        ({"level": "LOUD", "message": "m"}, "level", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"message": 123}, "message", "must be a string"),
        ({"message": "   "}, "message", "is required"),
        ({}, "message", "is required"),
        ({"message": "m", "extra": ["not", "an", "object"]}, "extra", "must be a JSON object"),
        ({"message": "m", "event_id": "7"}, "event_id", "must be an integer"),
        ({"message": "m", "event_id": True}, "event_id", "must be an integer"),
        ({"message": "m", "duration_ms": -1}, "duration_ms", "must be between 0 and 2147483647"),
        ({"message": "m", "component": ["a"]}, "component", "must be a string"),
        ({"message": "m", "password": "x"}, "entry", "unknown field(s): password"),
        ("just a string", "entry", "must be a JSON object"),
    ],
)
def test_wrong_types_give_400_with_the_field_errors(viewer_client, entry, field, message):
    response = post(viewer_client, [{"message": "fine"}, entry])
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Some log entries are invalid; nothing was stored."
    assert {"index": 1, "field": field, "message": message} in body["errors"]
    assert Log.objects.count() == 0  # all or nothing


@pytest.mark.parametrize(
    "body, words",
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "The batch is empty."),
        (b"42", "one log entry"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_bodies_give_400(viewer_client, body, words):
    response = post(viewer_client, body)
    assert response.status_code == 400 and words in response.json()["error"]


def test_form_encoded_body_is_refused(viewer_client):
    response = viewer_client.post(URL, {"message": "x"})
    assert response.status_code == 415


def test_anonymous_callers_get_401_json(client):
    response = post(client, {"message": "hi"})
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required."}
    assert Log.objects.count() == 0


def test_csrf_token_is_required(viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    refused = post(client, {"message": "no token"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    client.get(reverse("monitoring:logs"))  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = post(client, {"message": "with token"}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    assert list(Log.objects.values_list("message", flat=True)) == ["with token"]


def test_get_is_not_allowed(viewer_client):
    assert viewer_client.get(URL).status_code == 405


def test_entries_are_sanitised(viewer_client):
    entry = {
        "message": "bad\x00 bytes\x07 and <script>alert(1)</script>\nsecond line" + "y" * 20_000,
        "component": "ui\x1b[31m\nred",
        "extra": {"k\x00ey": "v\x00al\x01ue", "nested": [{"x": "\x02y"}]},
        "camera_id": "c" * 500,
    }
    assert post(viewer_client, entry).status_code == 201
    row = Log.objects.get()
    assert row.message.startswith("bad bytes and <script>alert(1)</script>\nsecond line")
    assert len(row.message) == 10_000
    assert row.component == "ui[31mred"
    assert row.extra == {"key": "value", "nested": [{"x": "y"}]}
    assert len(row.camera_id) == 100


@pytest.mark.parametrize("depth", [25, 5000])
def test_deeply_nested_json_is_a_400(viewer_client, depth):
    body = '{"message": "m", "extra": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    response = post(viewer_client, body)
    assert response.status_code == 400 and "nested more than 20 levels" in response.json()["error"]
    assert Log.objects.count() == 0


def test_nesting_within_the_limit_is_kept(viewer_client):
    extra = {"a": {"b": {"c": {"d": [1, 2, {"e": "f"}]}}}}
    assert post(viewer_client, {"message": "m", "extra": extra}).status_code == 201
    assert Log.objects.get().extra == extra
