"""The site shell: login, navigation, logout, /healthz."""

import pytest
from django.urls import reverse

from dashboard.context_processors import NAV

pytestmark = pytest.mark.django_db


def test_login_page_renders_for_anonymous(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in to Watchpost" in response.content


def test_every_area_redirects_anonymous_to_login(client):
    for name, _label in NAV:
        url = reverse(name)
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_login_with_wrong_password_shows_error(client, operator):
    response = client.post(reverse("login"), {"username": operator.username, "password": "wrong"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_login_then_navigation_lists_every_area(client, operator):
    response = client.post(reverse("login"), {"username": operator.username, "password": "correct-horse-battery"})
    assert response.status_code == 302
    page = client.get(reverse("home"))
    assert page.status_code == 200
    html = page.content.decode()
    for name, label in NAV:
        assert f'href="{reverse(name)}"' in html, label
    assert operator.username in html


def test_every_area_opens_for_a_viewer(viewer_client):
    for name, _label in NAV:
        response = viewer_client.get(reverse(name))
        assert response.status_code == 200, name


def test_logout_ends_the_session(operator_client):
    response = operator_client.post(reverse("logout"))
    assert response.status_code == 302
    assert operator_client.get(reverse("home")).status_code == 302


def test_healthz_reports_database_and_worker_without_login(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["status"] == "ok"
    assert "worker_heartbeat_age_seconds" in body
    assert body["worker"] in {"ok", "stale", "unknown"}


def test_healthz_refuses_post(client):
    assert client.post(reverse("healthz")).status_code == 405


def test_healthz_reports_worker_ok_after_a_heartbeat(client):
    from django_q.tasks import async_task

    from dashboard.schedules import ensure_schedules
    from dashboard.services.health import HEARTBEAT_FUNC

    ensure_schedules()
    ensure_schedules()  # idempotent
    async_task(HEARTBEAT_FUNC, sync=True)
    body = client.get(reverse("healthz")).json()
    assert body["worker"] == "ok"
    assert body["worker_heartbeat_age_seconds"] < 60


def test_favicon_redirects_to_the_static_icon_without_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith(".svg")
    assert client.head("/favicon.ico").status_code == 302
    assert client.get(reverse("login")).content.count(b'rel="icon"') == 1
