import pytest

from tests import factories

pytestmark = pytest.mark.django_db


def test_every_factory_saves():
    for name in dir(factories):
        obj = getattr(factories, name)
        if isinstance(obj, type) and name.endswith("Factory") and name not in ("DjangoModelFactory",):
            instance = obj()
            assert instance.pk is not None, name
