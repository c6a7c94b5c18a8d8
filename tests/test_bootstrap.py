import pytest
from django.contrib.auth.models import User

from dashboard.services.bootstrap import ensure_first_operator

pytestmark = pytest.mark.django_db


def test_first_operator_is_created_once_with_a_generated_password():
    created = ensure_first_operator()
    assert created is not None
    username, password = created
    user = User.objects.get(username=username)
    assert user.check_password(password)
    assert user.is_staff and user.groups.filter(name="Operators").exists()
    assert ensure_first_operator() is None
    assert User.objects.count() == 1


def test_no_operator_is_created_when_one_exists(operator):
    assert ensure_first_operator() is None
