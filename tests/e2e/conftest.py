"""Browser end-to-end tests: Playwright for Python driving Debian's Chromium.

On a machine without Chromium these tests are skipped with the reason; `.ci/run`
installs the `chromium` package so CI always runs them.

Every test in tests/e2e fails when a page it visited raised a JavaScript error,
reported a Content-Security-Policy violation, answered a 5xx, or failed to load
one of its own scripts, styles or images — even when the test's own assertions
passed. A test that provokes such a message on purpose says so with
`browser_problems.allow(r"regex")`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by
# the test itself (factories, assertions) are still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).parent / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Runs before any script of the page and is not subject to the page's CSP (Playwright
# injects it through the DevTools protocol), so violations cannot go unnoticed even if
# Chromium's own "Refused to execute…" console line is not surfaced.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + (e.sourceFile || document.location.href) + ":" + e.lineNumber);
});
"""
# Resource types whose failure to load is a broken page, not an expected refusal.
ASSET_TYPES = {"script", "stylesheet", "image", "font"}


def pytest_collection_modifyitems(config, items):
    reason = None
    if not CHROMIUM:
        reason = "Chromium is not installed (apt-get install -y chromium); .ci/run installs it"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[test]')"
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


class BrowserProblems:
    """What went wrong in the browser during one test (JS errors, CSP, 5xx, broken assets)."""

    def __init__(self):
        self.items: list[str] = []
        self._allowed: list[re.Pattern] = []

    def add(self, text: str) -> None:
        self.items.append(text)

    def allow(self, pattern: str) -> None:
        """Expected for this test (e.g. htmx logging a 409 the page shows as a message)."""
        self._allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [p for p in self.items if not any(a.search(p) for a in self._allowed)]

    def on_console(self, msg) -> None:
        if msg.type != "error":
            return
        text = msg.text
        # Failed loads are judged from the responses themselves (see on_response):
        # an htmx request refused with 400/409 logs this line too, and that can be fine.
        if text.startswith("Failed to load resource"):
            return
        self.add(f"console error: {text}")

    def on_response(self, response) -> None:
        request = response.request
        if response.status >= 500:
            self.add(f"HTTP {response.status} from {request.method} {response.url}")
        elif (
            response.status >= 400
            and request.resource_type in ASSET_TYPES
            and not response.url.endswith("/favicon.ico")
        ):
            self.add(f"HTTP {response.status} loading {request.resource_type} {response.url}")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    # Only items under tests/e2e reach this conftest's hook; other folders that import
    # the `page` fixture (tests/alerting/test_browser.py) keep their own rules.
    result = yield
    problems = getattr(item, "browser_problems", None)
    if problems is not None:
        unexpected = problems.unexpected()
        if unexpected:
            raise AssertionError("The browser reported problems:\n  " + "\n  ".join(unexpected))
    return result


@pytest.fixture
def page(browser, request, live_server):
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1400, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    context.add_init_script(CSP_REPORTER)
    page = context.new_page()
    problems = BrowserProblems()
    page.on("pageerror", lambda exc: problems.add(f"JS error: {exc}"))
    page.on("console", problems.on_console)
    page.on("response", problems.on_response)
    request.node.browser_problems = problems
    yield page
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def browser_problems(page, request) -> BrowserProblems:
    return request.node.browser_problems


@pytest.fixture
def login(page):
    def _login(user, password="correct-horse-battery"):
        page.goto("/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login/" not in url)
        return page

    return _login


@pytest.fixture
def file_dirs(settings, tmp_path):
    """Exports, backups and uploads of this test under its own tmp folder (the live server
    thread reads the same settings object)."""
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return tmp_path
