import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_logs_in_and_sees_navigation(page, login, operator):
    login(operator)
    assert page.locator("nav.mainnav a", has_text="GPU").is_visible()
    assert page.locator(".username").inner_text() == operator.username


def test_wrong_password_is_refused(page, operator):
    page.goto("/login/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert "/login/" in page.url
    assert page.locator(".errors").is_visible()
