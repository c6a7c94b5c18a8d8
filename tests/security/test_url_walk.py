"""Every URL of the project, for every role.

- anonymous: redirect to the login page (HTML) or 401 (JSON under /api/), for GET and POST;
- viewer: any POST/PUT/PATCH/DELETE is refused (403, or 405 where the method does not
  exist) and changes no data;
- operator: every page opens (200/3xx, or 405 for POST-only endpoints), never 5xx, and
  opening it changes no data (GET carries no CSRF token).

Routes are collected from the resolver, so pages added later are walked too. A
route whose path arguments cannot be filled from tests/factories.py is skipped
with the reason (see urlwalk.value_for to teach it a new argument name).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.security.urlwalk import (
    World,
    build_url,
    data_snapshot,
    diff_snapshot,
    harvest_url,
    skipped_routes,
    walk_routes,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("files_in_tmp")]

ROUTES = walk_routes()
ROUTE_IDS = [r.id for r in ROUTES]

# Viewers' browsers post frontend logs too; ingesting them changes no console data
# (the walk does not watch the logs table), so this endpoint may answer 2xx to a viewer.
VIEWER_MAY_POST = {"api/logs/"}

OPERATOR_GET_OK = {200, 204, 301, 302, 303, 304, 405}


def _url(route, world=None):
    world = world or World()
    url, reason = build_url(route, world)
    if url is None:
        # Arguments no factory can guess (a widget slug...): take a link from the pages.
        client = Client()
        client.force_login(factories.UserFactory(username="walk_harvester", role="operator"))
        url = harvest_url(route, client, world)
    if url is None:
        pytest.skip(f"{route.id}: {reason}, and no page links to it")
    return url


def test_walk_finds_the_console_pages():
    names = {r.name for r in ROUTES}
    for name in ("home", "dashboard:events", "monitoring:gpu", "alerting:rules", "jobs:exports"):
        assert name in names
    skipped = {r.name for r, _ in skipped_routes()}
    assert {"login", "logout", "healthz", "favicon"} <= skipped


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_anonymous_is_sent_to_login_or_gets_401(route):
    url = _url(route)
    client = Client()
    for method in ("get", "post"):
        before = data_snapshot() if method == "post" else None
        response = getattr(client, method)(url)
        if route.is_json_endpoint:
            # A POST-only endpoint may refuse the method (405) before it looks at the user.
            allowed = {401, 405} if method == "get" else {401}
            assert response.status_code in allowed, f"{method.upper()} {url} -> {response.status_code}"
            if response.status_code == 405:
                continue
            assert response["Content-Type"].startswith("application/json"), f"{url}: 401 without a JSON body"
        else:
            assert response.status_code == 302, f"{method.upper()} {url} -> {response.status_code}"
            assert urlsplit(response["Location"]).path == reverse("login"), f"{url} -> {response['Location']}"
        if before is not None:
            assert diff_snapshot(before, data_snapshot()) == [], f"anonymous POST {url} changed data"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_viewer_cannot_change_anything(route, viewer_client):
    # Every kind of row exists, so a "bulk" or "all" action would have something to change.
    world = World().populate()
    url = _url(route, world)
    if route.pattern in VIEWER_MAY_POST:
        pytest.skip(f"{route.id}: viewers may post here ({VIEWER_MAY_POST})")
    for method in ("post", "put", "patch", "delete"):
        before = data_snapshot()
        # HTMX sends PUT/PATCH/DELETE (hx-put, hx-delete); a plain form sends POST.
        extra = {"HTTP_HX_REQUEST": "true"} if method != "post" else {}
        response = getattr(viewer_client, method)(url, **extra)
        assert response.status_code in (403, 405), f"viewer {method.upper()} {url} -> {response.status_code}"
        changed = diff_snapshot(before, data_snapshot())
        assert changed == [], f"viewer {method.upper()} {url} changed {changed}"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_viewer_reads_without_side_effects(route, viewer_client):
    # Viewers read everything; an operator-only form (or a sensitive download) may say 403.
    url = _url(route, World().populate())
    before = data_snapshot()
    response = viewer_client.get(url)
    assert response.status_code in OPERATOR_GET_OK | {403}, f"viewer GET {url} -> {response.status_code}"
    changed = diff_snapshot(before, data_snapshot())
    assert changed == [], f"viewer GET {url} changed {changed}"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_operator_can_open_every_page(route, operator_client):
    url = _url(route, World().populate())
    before = data_snapshot()
    response = operator_client.get(url)
    assert response.status_code in OPERATOR_GET_OK, f"operator GET {url} -> {response.status_code}"
    # GET is not protected by CSRF: a page that changes data when opened could be triggered from any site.
    changed = diff_snapshot(before, data_snapshot())
    assert changed == [], f"operator GET {url} changed {changed}"
    if response.status_code in (301, 302, 303):
        assert urlsplit(response["Location"]).path != reverse("login"), f"operator sent to login from {url}"
    # The same page as an HTMX request (partial) must work too.
    response = operator_client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code in OPERATOR_GET_OK, f"operator HTMX GET {url} -> {response.status_code}"
