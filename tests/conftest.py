import pytest
from django.contrib.auth.models import User

from tests import factories


@pytest.fixture
def operator(db) -> User:
    """A person who runs the console: may change rules, alerts, jobs, exports, backups."""
    return factories.UserFactory(username="olivia_operator", role="operator")


@pytest.fixture
def viewer(db) -> User:
    """Reads everything, changes nothing."""
    return factories.UserFactory(username="victor_viewer", role="viewer")


@pytest.fixture
def outsider(db) -> User:
    """Has an account but belongs to no group."""
    return factories.UserFactory(username="oscar_outsider", role=None)


@pytest.fixture
def staff(db) -> User:
    return factories.UserFactory(username="sam_staff", is_staff=True, is_superuser=True, role="operator")


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def admin_client_(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture(autouse=True)
def _empty_cache():
    """The cache is per process (LocMem): a value one test cached must not leak into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
