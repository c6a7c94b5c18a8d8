import datetime as dt

import pynvml
import pytest
from django.utils import timezone

from monitoring.models import GpuStat, SamplerStatus
from monitoring.services import sampler as sampler_mod
from monitoring.services.nvml_fake import MIB, FakeNVML
from monitoring.services.sampler import (
    GpuSampler,
    decode_throttle_reasons,
    gpu_status,
    inference_fps,
    memory_pressure,
)
from tests import factories

pytestmark = pytest.mark.django_db


def test_sample_stores_every_gpu_in_seed_units(sampler, fake_nvml):
    gpu = fake_nvml.gpus[1]
    gpu.memory_total = 24564 * MIB
    gpu.memory_used = 6144 * MIB + 300_000  # rounds to the nearest MB
    gpu.power_mw = 181_500
    gpu.power_limit_mw = 450_000
    gpu.bar1_used = 12 * MIB
    gpu.throttle_reasons = 0x4 | 0x20
    gpu.pcie_tx_kbs, gpu.pcie_rx_kbs = 1200, 48000
    gpu.encoder_utilization, gpu.decoder_utilization = 3, 12

    result = sampler.sample_and_store()

    assert result.available and len(result.rows) == 2
    rows = list(GpuStat.objects.order_by("gpu_index"))
    assert [r.gpu_index for r in rows] == [0, 1]
    row = rows[1]
    assert row.host == "gpu-host-1"
    assert row.gpu_uuid == gpu.uuid and row.gpu_name == "NVIDIA GeForce RTX 4090"
    assert row.memory_total == 24564 and row.memory_used == 6144
    assert row.power_usage == pytest.approx(181.5) and row.power_limit == pytest.approx(450.0)
    assert row.bar1_used == 12
    assert row.gpu_utilization == 40.0 and row.memory_bandwidth_utilization == 20.0
    assert row.temperature == 58.0 and row.temp_slowdown_threshold == 90.0
    assert (row.sm_clock, row.sm_clock_max, row.memory_clock, row.memory_clock_max) == (2100, 2520, 10501, 10501)
    assert row.fan_speed == 40 and row.pstate == 2
    assert row.throttle_reasons == 0x24
    assert (row.pcie_link_gen, row.pcie_link_width, row.pcie_replay_counter) == (4, 16, 0)
    assert (row.pcie_tx_throughput, row.pcie_rx_throughput) == (1200, 48000)
    assert (row.encoder_utilization, row.decoder_utilization) == (3, 12)
    assert row.compute_processes_count == 1
    assert row.inference_fps == 0.0
    status = SamplerStatus.objects.get(host="gpu-host-1")
    assert status.available and status.gpu_count == 2 and status.reason == ""
    assert status.driver_version == "550.54.15"
    assert status.details["gpus"][1]["processes"] == [{"pid": 4243, "name": "detector", "used_memory_mb": 4608}]


def test_not_supported_call_makes_only_that_field_null(sampler, fake_nvml):
    fake_nvml.gpus[0].failures.update(
        {
            "nvmlDeviceGetFanSpeed": pynvml.NVMLError_NotSupported,
            "nvmlDeviceGetPcieThroughput": pynvml.NVMLError_NotSupported,
            "nvmlDeviceGetEncoderUtilization": pynvml.NVMLError_NotSupported,
        }
    )

    sampler.sample_and_store()
    sampler.sample_and_store()  # PCIe from the slow-read cache this time

    row = GpuStat.objects.filter(gpu_index=0).first()
    assert row.fan_speed is None and row.encoder_utilization is None
    assert row.pcie_tx_throughput is None and row.pcie_rx_throughput is None
    assert row.gpu_utilization == 30.0 and row.memory_used == 6144 and row.temperature == 55.0
    assert set(GpuStat.objects.filter(gpu_index=1).values_list("fan_speed", flat=True)) == {40}
    detail = SamplerStatus.objects.get().details["gpus"][0]
    assert detail["unsupported"] == ["encoder_utilization", "fan_speed", "pcie_rx_throughput", "pcie_tx_throughput"]
    assert detail["errors"] == {}


def test_failing_call_is_null_and_reported_once(sampler, fake_nvml, caplog):
    fake_nvml.gpus[0].failures["nvmlDeviceGetPowerUsage"] = pynvml.NVMLError_Unknown
    fake_nvml.gpus[0].failures["nvmlDeviceGetTemperature"] = RuntimeError("binding broke")

    sampler.sample_and_store()
    sampler.sample_and_store()

    rows = GpuStat.objects.filter(gpu_index=0)
    assert rows.count() == 2
    assert all(r.power_usage is None and r.temperature is None and r.gpu_utilization == 30.0 for r in rows)
    errors = SamplerStatus.objects.get().details["gpus"][0]["errors"]
    assert errors["power_usage"] == "Unknown Error"
    assert "binding broke" in errors["temperature"]
    warnings = [r for r in caplog.records if "power_usage" in r.getMessage()]
    assert len(warnings) == 1  # not once per tick


@pytest.mark.parametrize(
    "error, words",
    [
        (pynvml.NVMLError_LibraryNotFound, "NVML Shared Library Not Found (libnvidia-ml.so.1 is missing"),
        (pynvml.NVMLError_DriverNotLoaded, "Driver Not Loaded (the NVIDIA kernel module is not loaded)"),
    ],
)
def test_no_driver_stores_no_rows_and_the_reason(error, words):
    sampler = GpuSampler(nvml=FakeNVML(init_error=error), host="no-gpu-host")

    result = sampler.sample_and_store()

    assert not result.available
    assert GpuStat.objects.count() == 0
    status = SamplerStatus.objects.get(host="no-gpu-host")
    assert not status.available and status.gpu_count == 0
    assert words in status.reason
    info = gpu_status()
    assert info["available"] is False and words in info["reason"] and info["gpus"] == []


def test_driver_without_gpus_says_so():
    sampler = GpuSampler(nvml=FakeNVML([]), host="empty")
    sampler.sample_and_store()
    assert GpuStat.objects.count() == 0
    assert SamplerStatus.objects.get().reason == "NVML reports no NVIDIA GPU on this host"


def test_gpu_whose_handle_fails_is_skipped_and_the_others_sampled(sampler, fake_nvml):
    fake_nvml.gpus[0].failures["nvmlDeviceGetHandleByIndex"] = pynvml.NVMLError_GpuIsLost
    result = sampler.sample_and_store()
    assert [r.gpu_index for r in GpuStat.objects.all()] == [1]
    assert result.available
    assert SamplerStatus.objects.get().details["gpus"][0] == {"index": 0, "error": "GPU is lost"}


def test_gpu_lost_mid_sample_reinitialises_nvml_next_tick(sampler, fake_nvml):
    fake_nvml.gpus[1].failures["nvmlDeviceGetUtilizationRates"] = pynvml.NVMLError_GpuIsLost
    sampler.sample_and_store()
    assert fake_nvml.init_count == 1 and not fake_nvml.initialised  # shut down for a clean start
    fake_nvml.gpus[1].failures.clear()
    sampler.sample_and_store()
    assert fake_nvml.init_count == 2
    assert GpuStat.objects.filter(gpu_index=1, gpu_utilization__isnull=False).count() == 1


def test_nvml_is_initialised_once_per_process(fake_nvml):
    first = GpuSampler(nvml=fake_nvml, host="h")
    second = GpuSampler(nvml=fake_nvml, host="h")
    for _ in range(3):
        first.sample()
        second.sample()
    assert fake_nvml.calls["nvmlInit"] == 1


def test_pcie_throughput_and_processes_are_read_less_often(fake_nvml):
    sampler = GpuSampler(nvml=fake_nvml, host="h", slow_read_seconds=3600)
    for _ in range(4):
        sampler.sample_and_store()
    # Two GPUs × TX and RX, once; the cached values are reused by the later samples.
    assert fake_nvml.calls["nvmlDeviceGetPcieThroughput"] == 4
    assert fake_nvml.calls["nvmlDeviceGetComputeRunningProcesses"] == 2
    assert fake_nvml.calls["nvmlDeviceGetUtilizationRates"] == 8
    assert set(GpuStat.objects.values_list("pcie_rx_throughput", flat=True)) == {48000}


def test_old_driver_without_clocks_event_reasons_uses_throttle_reasons(sampler, fake_nvml):
    fake_nvml.failures["nvmlDeviceGetCurrentClocksEventReasons"] = pynvml.NVMLError_FunctionNotFound
    fake_nvml.gpus[0].throttle_reasons = 0x40
    sampler.sample_and_store()
    assert GpuStat.objects.get(gpu_index=0).throttle_reasons == 0x40
    assert fake_nvml.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 2


def test_memory_is_read_as_v2_so_reserved_memory_is_not_counted_as_used(sampler, fake_nvml):
    seen = []
    real = fake_nvml.nvmlDeviceGetMemoryInfo

    def memory_info(handle, version=None):
        seen.append(version)
        return real(handle, version=version)

    fake_nvml.nvmlDeviceGetMemoryInfo = memory_info
    sampler.sample_and_store()
    assert seen and set(seen) == {pynvml.nvmlMemory_v2}
    assert GpuStat.objects.get(gpu_index=0).memory_used is not None


def test_driver_without_memory_v2_falls_back_to_v1_once(sampler, fake_nvml):
    seen = []
    real = fake_nvml.nvmlDeviceGetMemoryInfo

    def memory_info(handle, version=None):
        seen.append(version)
        if version:  # a driver before R510
            raise pynvml.NVMLError_FunctionNotFound()
        return real(handle)

    fake_nvml.nvmlDeviceGetMemoryInfo = memory_info
    sampler.sample_and_store()
    sampler.sample_and_store()
    assert seen == [pynvml.nvmlMemory_v2, None, None, None, None]
    assert GpuStat.objects.filter(memory_used__isnull=False).count() == 4
    assert not SamplerStatus.objects.get().details["gpus"][0]["errors"]


def test_unknown_pstate_is_null(sampler, fake_nvml):
    fake_nvml.gpus[0].pstate = 32  # NVML_PSTATE_UNKNOWN
    sampler.sample_and_store()
    assert GpuStat.objects.get(gpu_index=0).pstate is None


def test_inference_fps_counts_detections_of_the_last_minute():
    now = timezone.now()
    for seconds in (1, 10, 59):
        factories.DetectionFactory(detected_at=now - dt.timedelta(seconds=seconds))
    factories.DetectionFactory(detected_at=now - dt.timedelta(seconds=61))
    factories.DetectionFactory(detected_at=now + dt.timedelta(seconds=1))
    assert inference_fps(now) == pytest.approx(3 / 60, abs=1e-3)


def test_inference_fps_is_stored_on_every_gpu_row(sampler):
    now = timezone.now()
    for _ in range(6):
        factories.DetectionFactory(detected_at=now - dt.timedelta(seconds=5))
    sampler.sample_and_store(now)
    assert set(GpuStat.objects.values_list("inference_fps", flat=True)) == {0.1}


def test_throttle_reasons_are_decoded_into_names():
    assert decode_throttle_reasons(None) == [] and decode_throttle_reasons(0) == []
    assert decode_throttle_reasons(0x1) == ["GPU idle"]
    assert decode_throttle_reasons(0x4 | 0x40) == ["Software power cap", "Hardware thermal slowdown"]
    assert decode_throttle_reasons(0x8 | 0x10000) == ["Hardware slowdown", "Other (0x10000)"]


@pytest.mark.parametrize(
    "used, total, level",
    [
        (8000, 10000, "ok"),
        (8499, 10000, "ok"),
        (8500, 10000, "warning"),
        (9499, 10000, "warning"),
        (9500, 10000, "critical"),
        (1, None, None),
    ],
)
def test_memory_pressure_levels(used, total, level):
    assert memory_pressure(used, total) == level


def test_state_changes_are_logged_once(caplog):
    fake = FakeNVML(init_error=pynvml.NVMLError_LibraryNotFound)
    for _ in range(3):  # three scheduled runs, each with its own sampler
        sampler = GpuSampler(nvml=fake, host="quiet")
        sampler.sample_and_store()
        sampler.sample_and_store()
    assert len([r for r in caplog.records if "no NVIDIA GPU detected" in r.getMessage()]) == 1
    fake.init_error = None
    fake.gpus = FakeNVML.with_gpus(1).gpus
    GpuSampler(nvml=fake, host="quiet").sample_and_store()
    assert [r.getMessage() for r in caplog.records][-1] == "GPU sampler on quiet: 1 GPU(s) found"


def test_fake_is_selected_by_environment(monkeypatch):
    monkeypatch.setenv("WATCHPOST_FAKE_NVML", "3")
    module = sampler_mod.nvml_module()
    assert isinstance(module, FakeNVML) and len(module.gpus) == 3 and module.gpus[0].varying
    monkeypatch.setenv("WATCHPOST_FAKE_NVML", "0")
    assert sampler_mod.nvml_module().init_error is pynvml.NVMLError_LibraryNotFound
    monkeypatch.delenv("WATCHPOST_FAKE_NVML")
    assert sampler_mod.nvml_module() is pynvml


def test_fake_raises_the_real_pynvml_exception_types():
    fake = FakeNVML.with_gpus(1)
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        fake.nvmlDeviceGetHandleByIndex(5)
    fake.gpus[0].failures["nvmlDeviceGetName"] = pynvml.NVMLError_NotSupported
    with pytest.raises(pynvml.NVMLError) as info:
        fake.nvmlDeviceGetName(fake.nvmlDeviceGetHandleByIndex(0))
    assert info.value.value == pynvml.NVML_ERROR_NOT_SUPPORTED


def test_gpu_status_lists_latest_sample_per_gpu_with_derived_values(sampler, fake_nvml):
    fake_nvml.gpus[0].memory_used = int(0.9 * fake_nvml.gpus[0].memory_total)
    fake_nvml.gpus[0].throttle_reasons = 0x4
    old = timezone.now() - dt.timedelta(minutes=10)
    sampler.sample_and_store(old)
    sampler.sample_and_store()

    info = gpu_status()

    assert info["available"] is True and info["reason"] is None
    assert [g["index"] for g in info["gpus"]] == [0, 1]
    first = info["gpus"][0]
    assert first["recorded_at"] > old and not first["stale"]
    assert first["memory_pressure"] == "warning" and first["memory_percent"] == 90.0
    assert first["throttle_reasons"] == ["Software power cap"]
    assert first["processes"][0]["pid"] == 4242
    assert [g["key"] for g in info["known_gpus"]] == ["gpu-host-1:0", "gpu-host-1:1"]


def test_gpu_status_before_any_sampler_ran():
    info = gpu_status()
    assert info == {
        "available": False,
        "reason": "the GPU sampler has not reported yet (is the worker running?)",
        "gpus": [],
        "hosts": [],
        "known_gpus": [],
    }
