import pytest

from monitoring.services.nvml_fake import FakeNVML
from monitoring.services.sampler import GpuSampler


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
