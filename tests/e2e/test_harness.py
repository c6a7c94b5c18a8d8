"""The harness itself: the pages are served with a CSP that forbids inline script, and
the `page` fixture notices JS errors and CSP violations (so the other tests' silence means
something)."""

import pytest

from monitoring.models import Log
from tests.reliability.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_pages_forbid_inline_script_and_violations_are_reported(page, login, operator, browser_problems):
    login(operator)
    response = page.goto("/")
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp
    page.evaluate(
        """() => {
            const s = document.createElement("script");
            s.textContent = "window.__inlineRan = true";
            document.body.appendChild(s);
        }"""
    )
    page.wait_for_function("() => true")
    assert page.evaluate("() => window.__inlineRan === undefined")
    page.wait_for_timeout(200)  # the violation event is dispatched asynchronously
    assert any("CSP violation: script-src" in p for p in browser_problems.items), browser_problems.items
    browser_problems.allow("CSP violation|Content Security Policy")
    print(browser_problems.items)


def test_uncaught_javascript_errors_are_reported(page, login, operator, browser_problems):
    login(operator)
    page.goto("/")
    page.evaluate("() => setTimeout(() => { throw new Error('boom from the harness test'); }, 0)")
    page.wait_for_timeout(200)
    assert any("boom from the harness test" in p for p in browser_problems.items), browser_problems.items
    browser_problems.allow("boom from the harness test")

    # The page's own reporter (static/js/frontend-logger.js) sends the error to the log
    # ingestion endpoint after its batching delay. Waiting for the row here also keeps the
    # report inside this test: sent later, it landed in the next test's database.
    stored = wait_until(
        lambda: Log.objects.filter(source="frontend", message__contains="boom from the harness test").first(),
        10, 0.1, "the frontend reporter to store the error",
    )  # fmt: skip
    assert stored.level == "ERROR" and stored.component == "frontend"
    assert stored.extra["url"].endswith("/") and stored.user_agent
