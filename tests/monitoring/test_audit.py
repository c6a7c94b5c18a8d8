import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from dashboard.models import Camera
from monitoring.models import AuditLog
from monitoring.services import audit
from tests import factories

pytestmark = pytest.mark.django_db

URL = reverse("monitoring:audit")


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


# --- recorder -----------------------------------------------------------------------------------


def test_record_writes_actor_ip_agent_and_json_safe_details(operator):
    request = RequestFactory().post("/rules/1/", REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="Firefox/140")
    request.user = operator
    camera = factories.CameraFactory(id="porch")
    row = audit.record(
        "update",
        "alert_rule",
        1,
        request=request,
        details={
            "changes": {"threshold": [Decimal("0.5"), Decimal("0.75")], "camera": [None, camera]},
            "at": dt.date(2026, 1, 2),
        },
    )
    row.refresh_from_db()
    assert (row.actor, row.ip_address, row.user_agent, row.status) == (
        "olivia_operator",
        "192.0.2.7",
        "Firefox/140",
        "success",
    )
    assert row.resource_id == "1"
    assert row.details == {"changes": {"threshold": ["0.5", "0.75"], "camera": [None, "porch"]}, "at": "2026-01-02"}


def test_record_without_request_is_the_system():
    row = audit.record("cleanup", "job", "abc", details={"deleted": 3})
    assert row.actor == "system" and row.ip_address is None and row.user_agent is None


def test_changes_lists_only_differences_and_redacts_secrets():
    old = {"name": "a", "enabled": True, "webhook_secret": "s1", "api_key": None}
    new = {"name": "b", "enabled": True, "webhook_secret": "s2", "api_key": "k"}
    assert audit.changes(old, new) == {
        "name": ["a", "b"],
        "webhook_secret": ["[redacted]", "[redacted]"],
        "api_key": [None, "[redacted]"],
    }


def test_resource_type_is_snake_case_of_the_model():
    assert audit.resource_type_of(Camera) == "camera"
    assert audit.resource_type_of(AuditLog) == "audit_log"


# --- client IP ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        ([], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # no proxy configured: header ignored
        (["10.0.0.1"], "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # peer is not the proxy
        (["10.0.0.1"], "10.0.0.1", "198.51.100.1", "198.51.100.1"),
        (["10.0.0.1"], "10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # client-written hop ignored
        (["10.0.0.0/8"], "10.0.0.1", "198.51.100.1, 10.2.3.4", "198.51.100.1"),  # chain of proxies
        (["10.0.0.1"], "10.0.0.1", "not-an-ip", "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", "", "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", "198.51.100.1:5123", "198.51.100.1"),
        (["::1"], "::1", "[2001:db8::7]:443", "2001:db8::7"),
        (["10.0.0.1", "bogus"], "10.0.0.1", "198.51.100.1", "198.51.100.1"),
    ],
)
def test_forwarded_for_is_trusted_only_from_configured_proxies(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = proxies
    assert audit.client_ip(request_from(remote, forwarded)) == expected


def test_audit_row_uses_the_forwarded_address_behind_a_trusted_proxy(settings, operator):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    request = request_from("10.0.0.1", "198.51.100.1")
    request.user = operator
    assert audit.record("update", "camera", "x", request=request).ip_address == "198.51.100.1"


# --- login, logout, failed login ---------------------------------------------------------------------


def test_force_login_is_audited_too(viewer_client, viewer):
    row = AuditLog.objects.get()
    assert (row.action, row.actor, row.resource_id) == ("login", "victor_viewer", str(viewer.pk))


def test_login_logout_and_failed_login_are_audited(client, operator):
    response = client.post(
        reverse("login"),
        {"username": "olivia_operator", "password": "wrong-password"},
        REMOTE_ADDR="192.0.2.10",
        HTTP_USER_AGENT="Chromium",
    )
    assert response.status_code == 200
    failed = AuditLog.objects.get(action="login_failed")
    assert (failed.status, failed.actor, failed.ip_address, failed.user_agent) == (
        "failure",
        "olivia_operator",
        "192.0.2.10",
        "Chromium",
    )
    assert failed.details == {"username": "olivia_operator"}
    assert "wrong-password" not in str(failed.details)

    response = client.post(
        reverse("login"), {"username": "olivia_operator", "password": "correct-horse-battery"}, REMOTE_ADDR="192.0.2.10"
    )
    assert response.status_code == 302
    login = AuditLog.objects.get(action="login")
    assert (login.status, login.actor, login.resource_type, login.resource_id) == (
        "success",
        "olivia_operator",
        "user",
        str(operator.pk),
    )

    assert client.post(reverse("logout")).status_code == 302
    logout = AuditLog.objects.get(action="logout")
    assert logout.actor == "olivia_operator" and logout.resource_id == str(operator.pk)


def test_logout_without_a_session_writes_nothing(client):
    client.post(reverse("logout"))
    assert not AuditLog.objects.exists()


# --- admin ----------------------------------------------------------------------------------------


def test_admin_change_is_audited_with_old_and_new_values(admin_client_):
    camera = factories.CameraFactory(id="gate", name="Gate", status="online", frame_width=1280)
    url = reverse("admin:dashboard_camera_change", args=[quote(camera.pk)])
    created = timezone.localtime(camera.created_at)
    data = {
        "name": "Garden gate",
        "folder_path": "",
        "status": "offline",
        "frame_path": "",
        "frame_width": "1920",
        "frame_height": "",
        "last_seen_at_0": "",
        "last_seen_at_1": "",
        "created_at_0": created.strftime("%Y-%m-%d"),
        "created_at_1": created.strftime("%H:%M:%S"),
    }
    response = admin_client_.post(url, data, REMOTE_ADDR="192.0.2.20")
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    camera.refresh_from_db()
    assert camera.name == "Garden gate"
    row = AuditLog.objects.get(action="update")
    assert (row.resource_type, row.resource_id, row.actor, row.ip_address) == (
        "camera",
        "gate",
        "sam_staff",
        "192.0.2.20",
    )
    changes = row.details["changes"]
    assert changes["name"] == ["Gate", "Garden gate"]
    assert changes["status"] == ["online", "offline"]
    assert changes["frame_width"] == [1280, 1920]
    assert row.details["via"] == "admin"


def test_admin_add_and_delete_are_audited(admin_client_):
    response = admin_client_.post(
        reverse("admin:dashboard_camera_add"),
        {"id": "shed", "name": "Shed", "folder_path": "", "status": "online", "frame_path": "", "frame_width": "", "frame_height": "",
         "last_seen_at_0": "", "last_seen_at_1": "", "created_at_0": "2026-01-01", "created_at_1": "10:00:00"},
    )  # fmt: skip
    assert response.status_code == 302
    added = AuditLog.objects.get(action="create")
    assert added.resource_id == "shed" and added.details["values"]["name"] == "Shed"

    response = admin_client_.post(reverse("admin:dashboard_camera_delete", args=["shed"]), {"post": "yes"})
    assert response.status_code == 302
    assert not Camera.objects.filter(pk="shed").exists()
    deleted = AuditLog.objects.get(action="delete")
    assert deleted.resource_id == "shed" and deleted.details["values"]["name"] == "Shed"


def test_audit_rows_cannot_be_changed_or_deleted_in_the_admin(admin_client_):
    row = factories.AuditLogFactory()
    change = reverse("admin:monitoring_auditlog_change", args=[row.pk])
    assert admin_client_.post(change, {"action": "forged"}).status_code == 403
    assert (
        admin_client_.post(reverse("admin:monitoring_auditlog_delete", args=[row.pk]), {"post": "yes"}).status_code
        == 403
    )
    row.refresh_from_db()
    assert row.action == "update"


# --- explorer -------------------------------------------------------------------------------------------


def shown_ids(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/audit/(\d+)/"', response.content.decode())]


@pytest.fixture
def audit_rows():
    # force_login (the *_client fixtures, requested first) already wrote a "login" row.
    AuditLog.objects.all().delete()
    now = timezone.now()
    make = factories.AuditLogFactory
    return {
        "rule": make(
            action="update",
            resource_type="alert_rule",
            actor="olivia_operator",
            timestamp=now - dt.timedelta(minutes=1),
        ),
        "login": make(
            action="login", resource_type="user", actor="victor_viewer", timestamp=now - dt.timedelta(minutes=2)
        ),
        "failed": make(
            action="login_failed",
            resource_type="user",
            actor="mallory",
            status="failure",
            timestamp=now - dt.timedelta(minutes=3),
        ),
        "export": make(
            action="create", resource_type="export_job", actor="olivia_operator", timestamp=now - dt.timedelta(days=10)
        ),
    }


@pytest.mark.parametrize(
    "params, keys",
    [
        ({}, ["rule", "login", "failed", "export"]),
        ({"action": "login"}, ["login"]),
        ({"resource_type": "user"}, ["login", "failed"]),
        ({"actor": "olivia_operator"}, ["rule", "export"]),
        ({"status": "failure"}, ["failed"]),
        ({"status": ["failure", "success"]}, ["rule", "login", "failed", "export"]),
    ],
)
def test_audit_filters(viewer_client, audit_rows, params, keys):
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    assert shown_ids(response) == [audit_rows[k].pk for k in keys]


def test_audit_time_range(viewer_client, audit_rows):
    since = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert shown_ids(viewer_client.get(URL, {"timestamp__gte": since})) == [
        audit_rows[k].pk for k in ("rule", "login", "failed")
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"status": "maybe"}, "Select a valid choice. maybe is not one of the available choices."),
        ({"timestamp__lt": "31/31/2026"}, "Enter a valid date/time."),
        (
            {"timestamp__gte": "2026-02-01T00:00", "timestamp__lt": "2026-01-01T00:00"},
            "The start of the time range must be before its end.",
        ),
        ({"before": "2026-01-01T00:00:00"}, "This page link is malformed"),
    ],
)
def test_audit_bad_filters_are_form_errors(viewer_client, audit_rows, params, message):
    response = viewer_client.get(URL, params)
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert shown_ids(response) == []


def test_audit_keyset_pagination(viewer_client):
    AuditLog.objects.all().delete()  # the viewer's own login row
    now = timezone.now()
    rows = [factories.AuditLogFactory(timestamp=now - dt.timedelta(seconds=i % 70)) for i in range(120)]
    expected = [r.pk for r in sorted(rows, key=lambda r: (r.timestamp, r.pk), reverse=True)]
    seen, url = [], URL
    while url:
        response = viewer_client.get(url)
        seen += shown_ids(response)
        match = re.search(r'href="(/audit/\?[^"]*before=[^"]*)"[^>]*>Older', response.content.decode())
        url = match.group(1).replace("&amp;", "&") if match else None
    assert seen == expected


def test_seven_day_summary_of_top_actions_and_actors(viewer_client, audit_rows):
    factories.AuditLogFactory(action="update", actor="olivia_operator")
    summary = audit.summary(days=7)
    assert summary["actions"][0] == ("update", 2)
    assert summary["actors"][0] == ("olivia_operator", 2)
    assert ("create", 1) not in summary["actions"]  # ten days old
    assert summary["failures"] == 1
    page = viewer_client.get(URL).content.decode()
    # The page loads the summary after itself (hx-get on load), with a plain link beside it.
    summary_url = reverse("monitoring:audit_summary")
    assert f'hx-get="{summary_url}"' in page and f'href="{summary_url}"' in page and "<h3>Top actions" not in page
    assert "{#" not in page and "aggregates every audit row" not in page  # template comments stay comments
    partial = viewer_client.get(summary_url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-summary").content.decode()
    assert "<html" not in partial and "Top actions" in partial and "Top actors" in partial
    assert '?action=update">update</a> <span class="muted">2</span>' in partial
    full = viewer_client.get(summary_url).content.decode()
    assert "<html" in full and "Last 7 days" in full and "Top actors" in full


def test_summary_is_cached_for_a_minute_and_says_when_it_was_computed(viewer_client, audit_rows):
    first = audit.summary(days=7)
    factories.AuditLogFactory(action="update", actor="olivia_operator")
    assert audit.summary(days=7) == first  # cached
    assert audit.summary(days=7, fresh=True)["actions"][0] == ("update", 2)
    html = viewer_client.get(reverse("monitoring:audit_summary")).content.decode()
    assert "as of " in html


def test_audit_detail_shows_old_and_new_values(viewer_client):
    row = factories.AuditLogFactory(
        details={"changes": {"enabled": [True, False], "name": ["<a>", "b"]}, "via": "admin"}
    )
    response = viewer_client.get(reverse("monitoring:audit_detail", args=[row.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<td>enabled</td><td><code>true</code></td>" in html and "<code>false</code>" in html
    assert "<code>&lt;a&gt;</code>" in html


def test_audit_pages_offer_no_way_to_change_rows(operator_client, audit_rows):
    row = audit_rows["rule"]
    for url in (URL, reverse("monitoring:audit_detail", args=[row.pk])):
        html = operator_client.get(url).content.decode()
        assert 'method="post"' not in html.replace('action="/logout/"', "").split("<main")[1]
        assert operator_client.post(url).status_code == 405
    row.refresh_from_db()
    assert row.action == "update"


def test_audit_list_query_count_is_fixed(viewer_client, django_assert_num_queries):
    for _ in range(60):
        factories.AuditLogFactory()
    # session, user, groups, the page (the 7-day summary loads separately: 3 more)
    with django_assert_num_queries(4):
        assert viewer_client.get(URL).status_code == 200
    with django_assert_num_queries(6):
        assert viewer_client.get(reverse("monitoring:audit_summary")).status_code == 200


def test_audit_htmx_results_skip_the_summary(viewer_client, audit_rows, htmx_headers, django_assert_num_queries):
    with django_assert_num_queries(4):
        response = viewer_client.get(URL, {"actor": "mallory"}, **htmx_headers("audit-results"))
    assert "<html" not in response.content.decode() and shown_ids(response) == [audit_rows["failed"].pk]


def test_user_model_is_unchanged_by_failed_logins(client):
    client.post(reverse("login"), {"username": "nobody", "password": "x"})
    assert AuditLog.objects.get().actor == "nobody"
    assert not User.objects.filter(username="nobody").exists()


def test_admin_bulk_delete_is_one_audit_row(staff):
    from django.contrib import admin

    for slug in ("a1", "a2", "a3"):
        factories.CameraFactory(id=slug)
    request = RequestFactory().post("/admin/", REMOTE_ADDR="192.0.2.30")
    request.user = staff
    model_admin = admin.site._registry[Camera]
    model_admin.delete_queryset(request, Camera.objects.filter(id__in=["a1", "a3"]))
    assert sorted(Camera.objects.values_list("id", flat=True)) == ["a2"]
    row = AuditLog.objects.get(action="delete")
    assert row.resource_type == "camera" and row.resource_id is None and row.actor == "sam_staff"
    assert row.details["count"] == 2 and sorted(row.details["ids"]) == ["a1", "a3"] and row.details["bulk"] is True


def test_jsonable_sorts_unordered_collections():
    cams = [factories.CameraFactory(id="zeta"), factories.CameraFactory(id="alpha")]
    assert audit.jsonable(cams) == ["alpha", "zeta"]
    assert audit.jsonable({"b", "a"}) == ["a", "b"]
    assert audit.jsonable([3, 1]) == [3, 1]  # a plain list keeps its order
