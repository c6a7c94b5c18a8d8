import pytest
from tests import factories
from tests.e2e.conftest import CHROMIUM, browser, login, page  # noqa

pytestmark = [pytest.mark.django_db(transaction=True)]

def test_dbg(page, login, operator):
    msgs = []
    page.on("console", lambda m: msgs.append(("console", m.text)))
    page.on("response", lambda r: msgs.append(("resp", r.url, r.status)))
    login(operator)
    page.goto("/rules/new/")
    page.fill("input[name=risk_threshold]", "150")
    page.wait_for_timeout(2500)
    print(msgs)
    print(page.locator("#err-risk_threshold").evaluate("e => e.outerHTML"))
    print(page.locator("input[name=_touched]").input_value())
