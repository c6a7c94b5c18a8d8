import pytest

from monitoring.services.nvml_fake import FakeNVML
from monitoring.services.sampler import GpuSampler


@pytest.fixture(autouse=True)
def fresh_sampler_state():
    """The sampler remembers per process what it last logged; each test starts clean."""
    from monitoring.services import sampler as sampler_mod

    sampler_mod._last_state.clear()
    yield
    sampler_mod._last_state.clear()


@pytest.fixture
def fake_nvml():
    """Two healthy fake GPUs with fixed values (see FakeGpu for the raw NVML numbers)."""
    return FakeNVML.with_gpus(2)


@pytest.fixture
def sampler(fake_nvml):
    return GpuSampler(nvml=fake_nvml, host="gpu-host-1")


@pytest.fixture
def htmx_headers():
    def make(target: str) -> dict:
        return {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target}

    return make
