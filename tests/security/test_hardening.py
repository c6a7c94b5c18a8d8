"""Security headers, CSRF on HTMX requests, HTTPS settings, check --deploy, password rules."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from tests import factories

ROOT = Path(__file__).resolve().parents[2]


# --- Headers -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "operator"])
def test_every_page_carries_the_security_headers(client, operator, who):
    if who == "operator":
        client.force_login(operator)
    response = client.get(reverse("login") if who == "anonymous" else reverse("home"))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = dict(
        (part.strip().split(" ", 1) + [""])[:2]
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    )
    assert policy == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
        "base-uri": "'self'",
    }


@pytest.mark.django_db
def test_session_cookie_is_http_only(client, operator):
    response = client.post(reverse("login"), {"username": operator.username, "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME]["httponly"] is True
    assert response.cookies[settings.SESSION_COOKIE_NAME]["samesite"] == "Lax"


# --- CSRF on HTMX requests -----------------------------------------------------------------


@pytest.mark.django_db
def test_htmx_post_without_csrf_token_is_refused_and_with_the_page_token_accepted(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    page = client.get(reverse("home"))
    # base.html hands htmx the token for every request it makes.
    match = re.search(r"""hx-headers='([^']*)'""", page.content.decode())
    assert match, "base.html must set hx-headers with the CSRF token on <body>"
    headers = json.loads(match.group(1))
    token = headers["X-CSRFToken"]
    assert token

    target = reverse("logout")  # a POST-only action every user has
    refused = client.post(target, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    assert "_auth_user_id" in client.session  # still logged in: nothing happened

    accepted = client.post(target, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_htmx_post_with_a_forged_token_is_refused(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    client.get(reverse("home"))
    response = client.post(reverse("logout"), HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN="A" * 64)
    assert response.status_code == 403


# --- Templates stay within the Content-Security-Policy --------------------------------------------

_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
_EVENT_ATTR = re.compile(r"""\s(on[a-z]+)\s*=\s*["']""", re.I)
# htmx evaluates these with Function(), which script-src 'self' blocks: hx-on*, hx-vars,
# "js:" values, and event filters in hx-trigger ("keyup[key=='Enter']").
_EVAL_ATTR = re.compile(
    r"""\s(hx-on[:\-\w]*|hx-vars)\s*=|\b((?:hx-vals|hx-headers)\s*=\s*["']\s*(?:js|javascript):)""", re.I
)
_TRIGGER = re.compile(r"""\bhx-trigger\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


def _trigger_filters(text: str) -> list[str]:
    """hx-trigger specs with an event filter: "[" in the event name (not in a from:<css selector>)."""
    found = []
    for double, single in _TRIGGER.findall(text):
        for spec in (double or single).split(","):
            tokens = spec.split()
            if not tokens:
                continue
            head = tokens[0] if tokens[0] != "every" or len(tokens) < 2 else tokens[1]
            if "[" in head:
                found.append(spec.strip())
    return found


def _template_files():
    dirs = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    for app in ("dashboard", "monitoring", "alerting", "jobs"):
        dirs.append(ROOT / app / "templates")
    for base in dirs:
        if base.is_dir():
            yield from sorted(base.rglob("*.html"))


def test_templates_have_no_inline_script_or_event_handlers():
    problems = []
    for path in _template_files():
        text = path.read_text(errors="replace")
        rel = path.relative_to(ROOT)
        for attrs in _SCRIPT_TAG.findall(text):
            # A JSON data island (type="application/json") is not executed and is allowed.
            if "src=" not in attrs and "application/json" not in attrs:
                problems.append(f"{rel}: inline <script{attrs}>")
        problems += [f"{rel}: inline event handler {m}=" for m in _EVENT_ATTR.findall(text)]
        problems += [f"{rel}: eval-based htmx attribute {''.join(m)}" for m in _EVAL_ATTR.findall(text)]
        problems += [f"{rel}: hx-trigger event filter needs eval: {spec}" for spec in _trigger_filters(text)]
        if "javascript:" in text.lower():
            problems.append(f"{rel}: javascript: URL")
    assert problems == []


_EVAL_JS = re.compile(r"""\beval\s*\(|\bnew\s+Function\s*\(|\bset(?:Timeout|Interval)\s*\(\s*["'`]""")


def test_static_scripts_do_not_need_eval():
    problems = []
    for path in sorted((ROOT / "static" / "js").rglob("*.js")):
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if _EVAL_JS.search(line):
                problems.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert problems == []


# --- Production settings ------------------------------------------------------------------------

PRODUCTION_ENV = {
    "DEBUG": "0",
    "HTTPS": "1",
    "ALLOWED_HOSTS": "watchpost.example",
    "WATCHPOST_TESTING": "0",
}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "PYTEST"))}
    env.pop("HTTPS", None)
    # The browser tests set this for the test process only; a deployment never has it.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["SECRET_KEY"] = secrets.token_urlsafe(48)  # 64 characters, many unique
    env.update(extra)
    return env


def _settings_in_subprocess(env: dict, names: list[str]) -> dict:
    code = (
        "import json, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'dashboard.settings');"
        "from django.conf import settings;"
        f"print(json.dumps({{n: repr(getattr(settings, n, None)) for n in {names!r}}}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


HTTPS_SETTINGS = [
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_PROXY_SSL_HEADER",
    "AXES_ENABLED",
]


def test_check_deploy_is_clean_under_production_settings():
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_env(**PRODUCTION_ENV),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout, proc.stdout + proc.stderr
    assert "WARNINGS" not in proc.stdout + proc.stderr


def test_https_switch_turns_on_secure_cookies_hsts_and_redirect():
    values = _settings_in_subprocess(_env(**PRODUCTION_ENV), HTTPS_SETTINGS)
    assert values == {
        "SESSION_COOKIE_SECURE": "True",
        "CSRF_COOKIE_SECURE": "True",
        "SECURE_SSL_REDIRECT": "True",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "True",
        "SECURE_PROXY_SSL_HEADER": "None",
        "AXES_ENABLED": "True",
    }


def test_https_knobs_can_be_tuned_for_a_tls_proxy():
    env = _env(**PRODUCTION_ENV, SECURE_HSTS_SECONDS="3600", SECURE_SSL_REDIRECT="0", SECURE_PROXY_SSL_HEADER="1")
    values = _settings_in_subprocess(env, HTTPS_SETTINGS)
    assert values["SECURE_HSTS_SECONDS"] == "3600"
    assert values["SECURE_SSL_REDIRECT"] == "False"
    assert values["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.parametrize(
    "extra",
    [
        {"DEBUG": "0", "WATCHPOST_TESTING": "0"},  # a local install on plain HTTP: the default
        {"DEBUG": "1", "HTTPS": "1", "WATCHPOST_TESTING": "0"},  # runserver never speaks TLS
    ],
    ids=["local-http", "debug"],
)
def test_plain_http_install_keeps_cookies_usable(extra):
    values = _settings_in_subprocess(_env(**extra), HTTPS_SETTINGS)
    assert values["SESSION_COOKIE_SECURE"] == "False"
    assert values["CSRF_COOKIE_SECURE"] == "False"
    assert values["SECURE_SSL_REDIRECT"] == "False"
    assert values["SECURE_HSTS_SECONDS"] == "0"


def test_bad_login_limit_stops_start_up_with_one_line():
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=_env(LOGIN_FAILURE_LIMIT="zero"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "LOGIN_FAILURE_LIMIT='zero' is not an integer." in proc.stderr


def test_tests_run_with_login_throttling_off():
    # Other tests may use client.login(); the lockout tests switch axes on themselves.
    assert settings.AXES_ENABLED is False
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


# --- Passwords ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt!pw", "too short"),
        ("1234567890123", "entirely numeric"),
        ("password1234", "too common"),
        ("olivia_operator1", "too similar"),
    ],
)
def test_weak_passwords_are_refused(password, message):
    user = factories.UserFactory.build(username="olivia_operator", email="olivia@example.com")
    with pytest.raises(ValidationError, match=message):
        validate_password(password, user)


def test_a_good_password_passes():
    validate_password("violet-harbour-lantern-42")


# --- NUL characters ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/events/", {"camera": "cam\x00"}),
        ("get", "/alerts/", {"q\x00": "x"}),
        ("get", "/zones/%00/", {}),
        ("post", "/rules/new/", {"name": "a\x00b"}),
    ],
)
def test_nul_characters_are_refused_with_400_before_any_view(operator_client, method, path, data):
    response = getattr(operator_client, method)(path, data)
    assert response.status_code == 400
    assert b"NUL" in response.content


@pytest.mark.django_db
def test_nul_check_comes_after_the_login_redirect(client):
    response = client.post("/rules/new/", {"name": "a\x00b"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_json_bodies_are_left_to_their_endpoint(operator_client):
    # A JSON body is not form data: the endpoint validates it itself (ingestion strips control characters).
    response = operator_client.post("/api/logs/", json.dumps({"message": "a\u0000b"}), content_type="application/json")
    assert response.status_code != 400 or b"NUL" not in response.content
