"""A stand-in for the `pynvml` module (nvidia-ml-py), for tests, demos and GPU-less machines.

It exposes the same function names, constants and *real* exception classes as
pynvml (`pynvml.NVMLError_NotSupported`, `NVMLError_LibraryNotFound`, ...), so
the sampler cannot tell it apart from the real library and its error handling is
exercised exactly as on a machine with a driver.

    fake = FakeNVML.with_gpus(2)                                   # two healthy GPUs
    fake.gpus[0].failures["nvmlDeviceGetFanSpeed"] = pynvml.NVMLError_NotSupported
    fake = FakeNVML(init_error=pynvml.NVMLError_LibraryNotFound)   # no driver installed

Running processes select it with the environment variable WATCHPOST_FAKE_NVML
(see `from_env`): `WATCHPOST_FAKE_NVML=2 make run` shows two fake GPUs whose
values move over time; `WATCHPOST_FAKE_NVML=0` behaves like a machine without
the NVIDIA driver.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml

MIB = 1024 * 1024
ENV_VAR = "WATCHPOST_FAKE_NVML"


@dataclass
class FakeProcess:
    pid: int
    used_memory_bytes: int | None
    name: str = "python3"


@dataclass
class FakeGpu:
    """Values in NVML's own units (bytes, mW, KB/s), as the driver reports them."""

    name: str = "NVIDIA GeForce RTX 4090"
    uuid: str = "GPU-00000000-fake-4090-0000-000000000000"
    utilization_gpu: int = 35
    utilization_memory: int = 20
    memory_total: int = 24564 * MIB
    memory_used: int = 6144 * MIB
    temperature: int = 55
    temp_slowdown: int = 90
    power_mw: int = 180_000
    power_limit_mw: int = 450_000
    fan_speed: int = 40
    sm_clock: int = 2100
    sm_clock_max: int = 2520
    memory_clock: int = 10501
    memory_clock_max: int = 10501
    pstate: int = 2
    throttle_reasons: int = 0
    processes: list[FakeProcess] = field(default_factory=lambda: [FakeProcess(4242, 4096 * MIB, "detector")])
    pcie_replay_counter: int = 0
    pcie_link_gen: int = 4
    pcie_link_width: int = 16
    pcie_tx_kbs: int = 1200
    pcie_rx_kbs: int = 48000
    encoder_utilization: int = 0
    decoder_utilization: int = 12
    bar1_total: int = 256 * MIB
    bar1_used: int = 12 * MIB
    # nvml function name -> exception class (or instance) raised by that call on this GPU.
    failures: dict = field(default_factory=dict)
    # Demo mode: utilisation, memory, temperature and power drift with time.
    varying: bool = False


def _raise(error) -> None:
    raise error() if isinstance(error, type) else error


class FakeNVML:
    """Module-like object: `sampler = GpuSampler(nvml=FakeNVML.with_gpus(2))`."""

    def __init__(self, gpus: list[FakeGpu] | None = None, *, init_error=None, driver_version: str = "550.54.15"):
        self.gpus = list(gpus or [])
        self.init_error = init_error
        self.driver_version = driver_version
        # Module-wide failures: {"nvmlDeviceGetCount": pynvml.NVMLError_Unknown}.
        self.failures: dict = {}
        self.calls: Counter = Counter()
        self.initialised = False
        self.init_count = 0
        # The real module's constants and exception classes, so `nvml.NVML_CLOCK_SM`
        # and `except nvml.NVMLError_NotSupported` work the same on both.
        for name in dir(pynvml):
            if name.startswith(("NVML_", "NVMLError", "nvmlClocks", "nvmlMemory_v")):
                setattr(self, name, getattr(pynvml, name))

    @classmethod
    def with_gpus(cls, count: int, *, varying: bool = False, **kwargs) -> FakeNVML:
        gpus = []
        for i in range(count):
            gpus.append(
                FakeGpu(
                    uuid=f"GPU-{i:08x}-fake-4090-0000-{i:012x}",
                    utilization_gpu=30 + 10 * i,
                    temperature=55 + 3 * i,
                    processes=[FakeProcess(4242 + i, (4096 + 512 * i) * MIB, "detector")],
                    varying=varying,
                )
            )
        return cls(gpus, **kwargs)

    @classmethod
    def from_env(cls, value: str | None = None) -> FakeNVML | None:
        """WATCHPOST_FAKE_NVML=N: N varying fake GPUs (1-16); 0: no NVIDIA driver; unset: None."""
        raw = os.environ.get(ENV_VAR) if value is None else value
        if raw is None or raw.strip() == "":
            return None
        try:
            count = int(raw)
        except ValueError:
            count = 1
        if count <= 0:
            return cls(init_error=pynvml.NVMLError_LibraryNotFound)
        return cls.with_gpus(min(count, 16), varying=True)

    # --- plumbing ---------------------------------------------------------------------------

    def _enter(self, fn: str, handle=None) -> FakeGpu | None:
        self.calls[fn] += 1
        if fn in self.failures:
            _raise(self.failures[fn])
        if not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        if handle is None:
            return None
        if not isinstance(handle, SimpleNamespace) or handle.index >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        gpu = self.gpus[handle.index]
        if fn in gpu.failures:
            _raise(gpu.failures[fn])
        return gpu

    @staticmethod
    def _wave(gpu: FakeGpu, base: float, amplitude: float, period: float, phase: float = 0.0) -> float:
        if not gpu.varying:
            return base
        return base + amplitude * math.sin(time.time() / period * 2 * math.pi + phase)

    # --- library ------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            _raise(self.init_error)
        if "nvmlInit" in self.failures:
            _raise(self.failures["nvmlInit"])
        self.initialised = True
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1
        if not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        self._enter("nvmlSystemGetProcessName")
        for gpu in self.gpus:
            for proc in gpu.processes:
                if proc.pid == pid:
                    return proc.name
        raise pynvml.NVMLError_NotFound()

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int):
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        gpu = self.gpus[index]
        if "nvmlDeviceGetHandleByIndex" in gpu.failures:
            _raise(gpu.failures["nvmlDeviceGetHandleByIndex"])
        return SimpleNamespace(index=index)

    # --- device -------------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle) -> str:
        return self._enter("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetUUID(self, handle) -> str:
        return self._enter("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetUtilizationRates(self, handle):
        gpu = self._enter("nvmlDeviceGetUtilizationRates", handle)
        util = self._wave(gpu, gpu.utilization_gpu, 25, 300, handle.index)
        return SimpleNamespace(gpu=int(max(0, min(100, util))), memory=int(max(0, min(100, gpu.utilization_memory))))

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        gpu = self._enter("nvmlDeviceGetMemoryInfo", handle)
        used = int(max(0, min(gpu.memory_total, self._wave(gpu, gpu.memory_used, 2048 * MIB, 900, handle.index))))
        if version:  # nvmlMemory_v2: the driver's reserved memory is reported apart from "used"
            return SimpleNamespace(
                version=version, total=gpu.memory_total, reserved=0, used=used, free=gpu.memory_total - used
            )
        return SimpleNamespace(total=gpu.memory_total, used=used, free=gpu.memory_total - used)

    def nvmlDeviceGetBAR1MemoryInfo(self, handle):
        gpu = self._enter("nvmlDeviceGetBAR1MemoryInfo", handle)
        return SimpleNamespace(
            bar1Total=gpu.bar1_total, bar1Used=gpu.bar1_used, bar1Free=gpu.bar1_total - gpu.bar1_used
        )

    def nvmlDeviceGetTemperature(self, handle, sensor):
        gpu = self._enter("nvmlDeviceGetTemperature", handle)
        return int(self._wave(gpu, gpu.temperature, 8, 600, handle.index))

    def nvmlDeviceGetTemperatureThreshold(self, handle, threshold):
        gpu = self._enter("nvmlDeviceGetTemperatureThreshold", handle)
        if threshold != pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
            raise pynvml.NVMLError_NotSupported()
        return gpu.temp_slowdown

    def nvmlDeviceGetPowerUsage(self, handle) -> int:
        gpu = self._enter("nvmlDeviceGetPowerUsage", handle)
        return int(self._wave(gpu, gpu.power_mw, 60_000, 300, handle.index))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle) -> int:
        return self._enter("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetFanSpeed(self, handle) -> int:
        return self._enter("nvmlDeviceGetFanSpeed", handle).fan_speed

    def nvmlDeviceGetClockInfo(self, handle, clock_type) -> int:
        gpu = self._enter("nvmlDeviceGetClockInfo", handle)
        return gpu.memory_clock if clock_type == pynvml.NVML_CLOCK_MEM else gpu.sm_clock

    def nvmlDeviceGetMaxClockInfo(self, handle, clock_type) -> int:
        gpu = self._enter("nvmlDeviceGetMaxClockInfo", handle)
        return gpu.memory_clock_max if clock_type == pynvml.NVML_CLOCK_MEM else gpu.sm_clock_max

    def nvmlDeviceGetPerformanceState(self, handle) -> int:
        return self._enter("nvmlDeviceGetPerformanceState", handle).pstate

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle) -> int:
        return self._enter("nvmlDeviceGetCurrentClocksEventReasons", handle).throttle_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle) -> int:
        return self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", handle).throttle_reasons

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        gpu = self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        return [SimpleNamespace(pid=p.pid, usedGpuMemory=p.used_memory_bytes) for p in gpu.processes]

    def nvmlDeviceGetPcieReplayCounter(self, handle) -> int:
        return self._enter("nvmlDeviceGetPcieReplayCounter", handle).pcie_replay_counter

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle) -> int:
        return self._enter("nvmlDeviceGetCurrPcieLinkGeneration", handle).pcie_link_gen

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle) -> int:
        return self._enter("nvmlDeviceGetCurrPcieLinkWidth", handle).pcie_link_width

    def nvmlDeviceGetPcieThroughput(self, handle, counter) -> int:
        gpu = self._enter("nvmlDeviceGetPcieThroughput", handle)
        return gpu.pcie_tx_kbs if counter == pynvml.NVML_PCIE_UTIL_TX_BYTES else gpu.pcie_rx_kbs

    def nvmlDeviceGetEncoderUtilization(self, handle):
        gpu = self._enter("nvmlDeviceGetEncoderUtilization", handle)
        return [gpu.encoder_utilization, 167_000]

    def nvmlDeviceGetDecoderUtilization(self, handle):
        gpu = self._enter("nvmlDeviceGetDecoderUtilization", handle)
        return [gpu.decoder_utilization, 167_000]
