"""Login throttling (django-axes): lockout per user name + client IP, friendly 429, audit rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from dashboard.security import client_ip
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # UserFactory's


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=15)
    return settings


def _login(client, username, password, ip="10.0.0.5"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_lockout_after_the_failure_limit_with_a_friendly_429(client, operator, axes_on):
    for _ in range(2):
        response = _login(client, operator.username, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
        assert "correct username and password" in response.content.decode()
    response = _login(client, operator.username, "wrong-password")
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed logins; try again in 15 minutes." in body
    assert response["Retry-After"] == "900"
    assert "Content-Security-Policy" in response  # still a normal page of the console

    # Locked: even the right password is refused, and no session is created.
    response = _login(client, operator.username, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_user_name_and_ip(client, operator, viewer, axes_on):
    for _ in range(3):
        _login(client, operator.username, "wrong", ip="10.0.0.5")
    assert _login(client, operator.username, PASSWORD, ip="10.0.0.5").status_code == 429
    # Another user from the same address, and the same user from another address, still get in.
    assert _login(client, viewer.username, PASSWORD, ip="10.0.0.5").status_code == 302
    client.logout()
    assert _login(client, operator.username, PASSWORD, ip="10.0.0.6").status_code == 302


def test_a_successful_login_resets_the_failure_count(client, operator, axes_on):
    for _ in range(2):
        _login(client, operator.username, "wrong")
    assert _login(client, operator.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert _login(client, operator.username, "wrong").status_code == 200
    assert _login(client, operator.username, PASSWORD).status_code == 302


def test_lockout_ends_after_the_cool_off(client, operator, axes_on):
    from axes.models import AccessAttempt

    for _ in range(3):
        _login(client, operator.username, "wrong")
    assert _login(client, operator.username, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=16))
    assert _login(client, operator.username, PASSWORD).status_code == 302


def test_every_failed_attempt_is_audited_also_during_the_lockout(client, operator, axes_on):
    pytest.importorskip("monitoring.signals")
    from monitoring.models import AuditLog

    for _ in range(4):
        _login(client, operator.username, "wrong", ip="10.0.0.9")
    _login(client, operator.username, PASSWORD, ip="10.0.0.9")  # refused by the lockout
    rows = AuditLog.objects.filter(action="login_failed").order_by("id")
    assert rows.count() == 5
    assert {r.status for r in rows} == {"failure"}
    assert {r.ip_address for r in rows} == {"10.0.0.9"}
    assert {r.details.get("username") for r in rows} == {operator.username}
    assert not AuditLog.objects.filter(action="login").exists()


def test_axes_unlock_command_lifts_a_lockout(client, operator, axes_on):
    from django.core.management import call_command

    for _ in range(3):
        _login(client, operator.username, "wrong")
    call_command("axes_reset_username", operator.username, stdout=open("/dev/null", "w"))
    assert _login(client, operator.username, PASSWORD).status_code == 302


def test_with_throttling_off_tests_may_use_client_login(client, operator):
    # AXES_ENABLED is False under pytest, so AxesBackend does not demand a request.
    assert client.login(username=operator.username, password=PASSWORD)


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("10.0.0.5", None, [], "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", [], "10.0.0.5"),  # untrusted peer: header ignored
        ("10.0.0.1", "1.2.3.4", ["10.0.0.1"], "1.2.3.4"),
        # The client wrote "6.6.6.6" itself; the proxy appended the real address.
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", ["10.0.0.1"], "1.2.3.4"),
        ("10.0.0.1", "1.2.3.4, 10.0.0.2", ["10.0.0.1", "10.0.0.2"], "1.2.3.4"),
        ("10.0.0.1", "garbage, 1.2.3.4", ["10.0.0.1"], "1.2.3.4"),
        ("10.0.0.1", "1.2.3.4, garbage", ["10.0.0.1"], "10.0.0.1"),
        ("10.0.0.1", "10.0.0.1", ["10.0.0.1"], "10.0.0.1"),
        ("not-an-ip", None, [], None),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(remote, forwarded, trusted, expected):
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **meta)
    with override_settings(TRUSTED_PROXIES=trusted):
        assert client_ip(request) == expected


def test_lockout_cannot_be_dodged_by_rotating_forwarded_for(client, axes_on):
    user = factories.UserFactory(username="rotating_target", role="viewer")
    axes_on.TRUSTED_PROXIES = ["10.0.0.1"]
    for i in range(3):
        client.post(
            reverse("login"),
            {"username": user.username, "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 1.2.3.4",
        )
    response = client.post(
        reverse("login"),
        {"username": user.username, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.99, 1.2.3.4",
    )
    assert response.status_code == 429
