"""Garbage in, never a 500: malformed POSTs and query strings on every route, as an operator.

Form views must answer 4xx or re-show the form (200) with an error; JSON
endpoints 4xx with a message. Field names are read from the page itself (its
<input>/<select>/<textarea> names) and topped up with common ones, then filled
with wrong types, huge strings, NUL bytes and odd numbers.
"""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.security.test_url_walk import ROUTE_IDS, ROUTES, _url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("files_in_tmp")]

HUGE = "x" * 200_000
COMMON_FIELDS = [
    "name", "description", "enabled", "severity", "risk_threshold", "object_types", "camera_ids", "zone_ids",
    "min_confidence", "schedule", "dedup_key_template", "cooldown_seconds", "channels", "coordinates", "shape",
    "zone_type", "color", "priority", "camera", "camera_id", "status", "version_id", "version", "notes",
    "feedback_type", "reviewed", "export_type", "export_format", "format", "filters", "retention_days",
    "legal_hold", "acknowledge", "confirm", "start", "end", "days", "timezone", "q", "level", "component",
    "source", "cursor", "before", "after", "page", "ids", "action", "reason", "job_type", "priority",
]  # fmt: skip
GARBAGE_VALUES = [
    "",
    "\x00\x01\x02",
    "-1",
    "99999999999999999999999999",
    "NaN",
    "1e309",
    '{"a": ',
    "<script>alert(1)</script>'; DROP TABLE alerts; --",
    "../../etc/passwd",
    "\u202e\ufeff\ud7ff",
    "2024-13-45T25:61:00",
    "00000000-0000-0000-0000-000000000000",
]

_FIELD = re.compile(r"""<(?:input|select|textarea)\b[^>]*\bname\s*=\s*["']([^"']+)["']""", re.I)
_FILE_FIELD = re.compile(r"""<input\b[^>]*\btype\s*=\s*["']file["'][^>]*\bname\s*=\s*["']([^"']+)["']""", re.I)


def _page_fields(client, url) -> tuple[list[str], list[str]]:
    response = client.get(url)
    if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
        return [], []
    html = response.content.decode(errors="replace")
    names = [n for n in dict.fromkeys(_FIELD.findall(html)) if n != "csrfmiddlewaretoken"]
    return names, list(dict.fromkeys(_FILE_FIELD.findall(html)))


def _payloads(fields: list[str], file_fields: list[str]):
    names = list(dict.fromkeys(fields + COMMON_FIELDS))
    files = {f: SimpleUploadedFile("x.zip", b"PK\x03\x04garbage") for f in file_fields}
    yield "empty body", {}
    for value in GARBAGE_VALUES:
        yield f"all fields = {value[:20]!r}", {name: value for name in names} | files
    # The page's own fields only: fifty common names times 200 kB would just hit Django's body limit (400).
    yield f"huge strings ({len(HUGE)} chars)", {name: HUGE for name in fields or ["name"]} | files
    # Several values where one is expected, and values of the wrong kind side by side.
    yield "repeated fields", {name: ["1", "two", HUGE[:1000]] for name in names}


def _assert_handled(response, what):
    assert response.status_code < 500, f"{what} -> {response.status_code}"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_malformed_form_posts_never_500(route, operator_client):
    url = _url(route)
    fields, file_fields = _page_fields(operator_client, url)
    for i, (label, data) in enumerate(_payloads(fields, file_fields)):
        response = operator_client.post(url, data)
        _assert_handled(response, f"POST {url} ({label})")
        if i < 3:  # HTMX requests take the partial-template path of the same view
            response = operator_client.post(url, data, HTTP_HX_REQUEST="true")
            _assert_handled(response, f"POST {url} ({label}, htmx)")


JSON_BODIES = [
    ("invalid JSON", "{", "application/json"),
    ("truncated JSON", '{"level": "error", "message": "x', "application/json"),
    ("JSON null", "null", "application/json"),
    ("JSON number", "42", "application/json"),
    ("JSON string", '"hello"', "application/json"),
    ("JSON list of junk", json.dumps([1, None, "x", [], {}]), "application/json"),
    (
        "wrong types",
        json.dumps({"level": 5, "message": ["a"], "component": {}, "timestamp": "yesterday"}),
        "application/json",
    ),
    ("deep nesting", "[" * 5000 + "]" * 5000, "application/json"),
    ("huge string", json.dumps({"message": HUGE}), "application/json"),
    ("NUL bytes", json.dumps({"message": "a\x00b", "component": "\x00"}), "application/json"),
    ("not UTF-8", b"\xff\xfe{\x00", "application/json"),
    ("form body to JSON endpoint", "a=1&b=2", "application/x-www-form-urlencoded"),
    ("JSON as text/plain", '{"message": "x"}', "text/plain"),
    ("empty body", "", "application/json"),
]


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.is_json_endpoint], ids=[r.id for r in ROUTES if r.is_json_endpoint]
)
@pytest.mark.parametrize(("label", "body", "content_type"), JSON_BODIES, ids=[b[0] for b in JSON_BODIES])
def test_malformed_json_never_500(route, operator_client, label, body, content_type):
    url = _url(route)
    response = operator_client.post(url, body, content_type=content_type)
    _assert_handled(response, f"POST {url} ({label})")
    if response.status_code >= 400:
        assert response.content, f"POST {url} ({label}): {response.status_code} without a message"


GARBAGE_QUERIES = [
    {"page": "-1", "cursor": "garbage", "before": "not-a-date", "after": "\x00"},
    {"cursor": "eyJpZCI6ICInOyBEUk9QIn0=", "page": "99999999999999999999"},
    {"status": ["nope", "pending", ""], "severity": "ultra", "level": "LOUD", "camera": "../../x"},
    {"started_at__gte": "2024-13-45", "started_at__lt": "yesterday", "created_at__gte": "1e309"},
    {"timestamp__gte": "-infinity", "recorded_at__lt": "0000-00-00", "range": "1000y", "bucket": "0s"},
    {"q": HUGE[:5000], "component": "\x00", "source": "<script>"},
    {"q": "&|!():*'\\", "risk_min": "NaN", "risk_max": "-5", "min_confidence": "Infinity"},
    {"hours": "-1", "days": "999999999", "gpu": "abc", "host": "%00", "limit": "1e9", "per_page": "0"},
    {"sort": "password", "order": "__class__", "ordering": "-user__password"},
]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_garbage_query_strings_never_500(route, operator_client):
    url = _url(route)
    for i, params in enumerate(GARBAGE_QUERIES):
        response = operator_client.get(url, params)
        _assert_handled(response, f"GET {url}?{params}")
        if i < 3:
            response = operator_client.get(url, params, HTTP_HX_REQUEST="true")
            _assert_handled(response, f"GET {url}?{params} (htmx)")
